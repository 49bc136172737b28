@testable import AMQPTasks
import Foundation
import Testing

/// What AMQPTasks does instead of the full Foundation (amqp-worker links FoundationEssentials only) gives what the
/// Foundation code it replaced gave, compared here where Foundation is linked.
@Suite struct FoundationFreeTests {
    /// The matcher Glob had: a regular expression per pattern, through Foundation.
    static func regexMatches(_ pattern: String, _ name: String) -> Bool {
        var regex = "^"
        var index = pattern.startIndex
        while index < pattern.endIndex {
            let ch = pattern[index]
            if ch == "*" {
                let next = pattern.index(after: index)
                if next < pattern.endIndex, pattern[next] == "*" {
                    regex += ".*"
                    index = pattern.index(after: next)
                    continue
                }
                regex += "[^.]*"
            } else {
                regex += NSRegularExpression.escapedPattern(for: String(ch))
            }
            index = pattern.index(after: index)
        }
        regex += "$"
        return name.range(of: regex, options: .regularExpression) != nil
    }

    @Test func globMatchesAsTheRegularExpressionItReplaced() {
        let patterns = [
            "", "*", "**", "a", "a.*", "a.**", "*.b", "**.b", "a.*.c", "a.**.c", "a*", "*a*", "a**b", "***", "a.b",
            "reports.**", "mail.*", "a+b", "a?b", "(a)", "[a]", "a|b", "^a$", "a\\b", "é.*", "a.*.*", "**.**",
            // A `*` carrying a combining mark is one character, not a wildcard, to the regular expression's builder.
            "*\u{301}", "a.*\u{301}", "**\u{301}", "*\u{301}*", "*\u{301}.b",
        ]
        let names = [
            "", "a", "b", "a.b", "a.b.c", "a.c", "a..c", "ab", "aXb", "a.x.b", "reports.build", "reports", "mail.send",
            "mail.send.now", "a+b", "aab", "(a)", "[a]", "a|b", "^a$", "a\\b", "é.x", "e\u{301}.x", "a\n", "a\nb",
            "a.\n.c", "x.a", ".", "..", "a.", ".b", "a\r\n", "ab\u{2028}", "a\u{0B}", "a.\u{0C}.c", "a\n\n", "a\r",
            "x\u{301}", "*\u{301}", "a.x\u{301}", "a.*\u{301}", "*\u{301}x", "x\u{301}.b", "*\u{301}.b", "**\u{301}",
        ]
        for pattern in patterns {
            for name in names {
                #expect(
                    Glob.matches(pattern, name) == Self.regexMatches(pattern, name),
                    "pattern \(pattern.debugDescription), name \(name.debugDescription)")
            }
        }
    }

    @Test func namedTimeZonesHaveTheirRulesAndUTCIsUTC() throws {
        let paris = try #require(try TimeZones.named("Europe/Paris"))
        #expect(paris.identifier == "Europe/Paris")
        #expect(paris.secondsFromGMT(for: Date(timeIntervalSince1970: 1_795_000_000)) == 3600)  // 2026-11-18
        #expect(paris.secondsFromGMT(for: Date(timeIntervalSince1970: 1_782_000_000)) == 7200)  // 2026-06-21
        #expect(try TimeZones.named("Not/AZone") == nil)
        #expect(try TimeZones.named("UTC") == TimeZones.utc)
        // Foundation's UTC and FoundationEssentials' (identifier GMT) are the same zone to a cron expression.
        let foundations = try CronExpression("0 9 * * *", timeZone: TimeZone(identifier: "UTC")!)
        let essentials = try CronExpression("0 9 * * *")
        #expect(foundations == essentials)
        #expect(foundations.hashValue == essentials.hashValue)
        #expect(essentials.description == "0 9 * * *")
        #expect(try CronExpression("0 9 * * *", timeZone: paris).description == "0 9 * * * (Europe/Paris)")
    }

    @Test func theLocalOffsetIsFoundationsCurrentZoneOffset() {
        #expect(TimeZones.localSecondsFromGMT() == TimeZone.current.secondsFromGMT())
    }

    @Test func outputFileAppendsAndSaysWhyItCannotOpen() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("output-file-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("first\n".utf8).write(to: URL(fileURLWithPath: path))
        let file = try OutputFile.appending(to: path)
        try file.write("second\n".utf8)
        try file.write(Array(repeating: UInt8(ascii: "x"), count: 100_000))
        close(file.descriptor)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("first\nsecond\nxxx"))
        #expect(text.utf8.count == 13 + 100_000)
        #expect(throws: OutputFileError.self) { try OutputFile.appending(to: "/nonexistent-dir/trace.log") }
        do {
            _ = try OutputFile.appending(to: "/nonexistent-dir/trace.log")
        } catch {
            #expect(error.description == "cannot open /nonexistent-dir/trace.log for appending: No such file or directory")
        }
    }
}

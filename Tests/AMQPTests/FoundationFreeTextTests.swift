@testable import AMQP
import Foundation
import Testing

/// What AMQP does instead of the full Foundation (it links FoundationEssentials only) gives what Foundation gave:
/// each case is compared with Foundation's own answer, in this process, which links Foundation.
@Suite struct FoundationFreeTextTests {
    static let samples = [
        "", " ", "\t", "plain", "  both  ", "\tleft", "right\t ", "\u{00A0}nbsp\u{00A0}", "\u{2003}em\u{3000}",
        "\u{200B}zero-width\u{200B}", "\nnew\nline\n", "\r\n crlf \r\n", "\u{85}nel\u{2028}", "\u{2029}para\u{000B}",
        "\u{000C}ff\u{001F}", " e\u{301} ", "\u{301} mark", " 😀 ", "a b", "\u{1680}ogham\u{180E}", "\u{FEFF}bom",
    ]

    @Test func trimmingWhitespaceIsFoundationsTrimmingOfWhitespaces() {
        for text in Self.samples {
            #expect(text.trimmingWhitespace() == text.trimmingCharacters(in: .whitespaces), "\(Array(text.unicodeScalars))")
        }
    }

    @Test func trimmingWhitespaceAndNewlinesIsFoundationsTrimmingOfWhitespacesAndNewlines() {
        for text in Self.samples {
            #expect(
                text.trimmingWhitespaceAndNewlines() == text.trimmingCharacters(in: .whitespacesAndNewlines),
                "\(Array(text.unicodeScalars))")
        }
    }

    @Test func everyScalarOfTheBasicPlaneIsClassedAsFoundationClassesIt() {
        for value in UInt32(0)...0xFFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            #expect(Unicode.Scalar.isWhitespace(scalar) == CharacterSet.whitespaces.contains(scalar), "U+\(String(value, radix: 16))")
            #expect(
                Unicode.Scalar.isWhitespaceOrNewline(scalar) == CharacterSet.whitespacesAndNewlines.contains(scalar),
                "U+\(String(value, radix: 16))")
        }
    }

    @Test func percentDecodedIsFoundationsRemovingPercentEncoding() {
        let samples = [
            "", "plain", "%2f", "%2F", "a%20b", "%", "%2", "%zz", "%2g", "100%", "%E2%82%AC", "%E2%82", "%FF", "%00",
            "caf%C3%A9", "%%41", "%4", "a+b", "%C3%A9%", "ünï", "%f0%9f%98%80",
        ]
        for text in samples {
            #expect(text.percentDecoded == text.removingPercentEncoding, "\(text)")
        }
    }

    @Test func cFormatIsFoundationsStringFormat() {
        let numbers: [Double] = [
            0, -0.0, 0.05, 0.15, 0.25, 0.35, 1.45, 2.5, -2.5, 1e15, 9_999_999_999_999_998, -1e16 + 2, 123.456, 1.0 / 3,
            .pi, 1e-300, 5e-324, 0.95, 0.049_999, 1.25, 99.95,
        ]
        for number in numbers {
            #expect(String(cFormat: "%.1f", number) == String(format: "%.1f", number), "\(number)")
        }
        for byte in [UInt8(0), 1, 9, 10, 15, 16, 127, 128, 255] {
            #expect(String(cFormat: "%02x", byte) == String(format: "%02x", byte))
        }
        let parts = [2026, 11, 27, 3, 4, 5, 678_901]
        #expect(
            String(cFormat: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6])
                == String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]))
        let long = String(repeating: "x", count: 200)
        #expect(String(cFormat: "%.1f \(long)", 1.25) == String(format: "%.1f \(long)", 1.25))
    }

    /// The name a DetachedThread shows (`top -H`, `/proc/…/comm`): Linux keeps 15 bytes, cut at a character
    /// boundary, so a name with `é` past the cut stays UTF-8. (Foundation's `Thread` set no name at all here:
    /// `pthread_setname_np` refuses more than 15 bytes, and it did not apply even shorter ones on Linux.)
    @Test(arguments: [
        ("amqp-tasks.watchdog", "amqp-tasks.watc"), ("amqp-io ééééééé:5672", "amqp-io ééé"),
        ("io-ééééééééé", "io-éééééé"), ("short", "short"),
    ])
    func aThreadIsNamedWithWholeCharacters(name: String, shown: String) async throws {
        let comm = await withCheckedContinuation { (done: CheckedContinuation<[UInt8], Never>) in
            DetachedThread.start(name: name) {
                done.resume(returning: Array((try? Data(contentsOf: URL(fileURLWithPath: "/proc/thread-self/comm"))) ?? Data()))
            }
        }
        #expect(String(validating: comm, as: UTF8.self) == shown + "\n", "\(comm)")
    }
}

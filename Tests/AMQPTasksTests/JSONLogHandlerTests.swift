@testable import AMQPTasks
import Foundation
import Logging
import Synchronization
import Testing

/// `amqp-worker --log-format json`'s handler: one valid JSON object per line whatever the message holds, metadata
/// flattened, and `[worker] log_format` read with bad values named by file, line and key.
@Suite struct JSONLogHandlerTests {
    /// The lines a handler wrote.
    final class Captured: Sendable {
        private let lines = Mutex<[Data]>([])
        var all: [Data] { lines.withLock { $0 } }
        var output: JSONLogHandler.Output { JSONLogHandler.Output { line in self.lines.withLock { $0.append(line) } } }
    }

    func logger(_ captured: Captured, metadata: Logger.Metadata = ["worker": "w1@host"]) -> Logger {
        Logger(label: "amqp-tasks.worker") { label in
            JSONLogHandler(label: label, output: captured.output, metadata: metadata, metadataProvider: nil)
        }
    }

    /// The one line `data` holds, parsed; fails unless it is exactly one line ending in a newline.
    func object(_ data: Data) throws -> [String: JSONValue] {
        #expect(data.last == UInt8(ascii: "\n"))
        #expect(data.filter { $0 == UInt8(ascii: "\n") }.count == 1, "one line: \(String(decoding: data, as: UTF8.self))")
        return try #require(try JSONValue.parse(data.dropLast()).objectValue)
    }

    @Test func eachLineIsOneObjectWithTimeLevelMessageAndMetadata() throws {
        let captured = Captured()
        var log = logger(captured)
        log[metadataKey: "task"] = "demo.add"
        log[metadataKey: "task_id"] = "3f2a"
        log.error("failed: ValueError", metadata: ["attempt": "2"])
        let line = try object(try #require(captured.all.first))
        #expect(line["level"] == "error")
        #expect(line["message"] == "failed: ValueError")
        #expect(line["label"] == "amqp-tasks.worker")
        #expect(line["worker"] == "w1@host" && line["task"] == "demo.add" && line["task_id"] == "3f2a")
        #expect(line["attempt"] == "2")
        let time = try #require(line["time"]?.stringValue)
        #expect(time.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z/) != nil, "\(time)")
    }

    @Test func quotesNewlinesControlCharactersAndUnicodeStayInOneValidLine() throws {
        let captured = Captured()
        let text = "say \"hi\"\\ \nsecond line\r\tand\u{1} \u{2028}é 漢字 🚀"
        logger(captured).info("\(text)", metadata: ["key \"quoted\"\n": .string(text)])
        let data = try #require(captured.all.first)
        #expect(!String(decoding: data.dropLast(), as: UTF8.self).contains("\u{2028}"))
        let line = try object(data)
        #expect(line["message"] == .string(text))
        #expect(line["key \"quoted\"\n"] == .string(text))
    }

    @Test func metadataThatClashesWithAFieldIsRenamedAndNestedValuesStayJSON() throws {
        let captured = Captured()
        logger(captured).warning(
            "m", metadata: ["message": "not the message", "level": "x", "list": ["a", "b"], "map": ["k": "v"]])
        let line = try object(try #require(captured.all.first))
        #expect(line["message"] == "m" && line["level"] == "warning")
        #expect(line["metadata.message"] == "not the message" && line["metadata.level"] == "x")
        #expect(line["list"] == ["a", "b"] && line["map"] == ["k": "v"])
    }

    @Test func theMetadataProviderIsRead() throws {
        let captured = Captured()
        let provider = Logger.MetadataProvider { ["trace_id": "abc"] }
        let log = Logger(label: "l") { JSONLogHandler(label: $0, output: captured.output, metadataProvider: provider) }
        log.info("m")
        #expect(try object(try #require(captured.all.first))["trace_id"] == "abc")
    }

    @Test func timestampsAreUTCWithMicroseconds() {
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 0.5)) == "1970-01-01T00:00:00.500000Z")
        // Microseconds that round up to a whole second carry into the seconds (and here the year).
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 1_767_225_599.9999996)) == "2026-01-01T00:00:00.000000Z")
    }

    @Test func theConfigurationFileSetsTheLogFormat() throws {
        let json = try TasksConfiguration.parse("[worker]\nlog_format = \"json\"\n", file: "log.toml", environment: [:])
        #expect(json.worker.logFormat == .json)
        #expect(TasksConfiguration().worker.logFormat == .text)
        let errors = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse("[worker]\nqueues = [\"a\"]\nlog_format = \"yaml\"\n", file: "log.toml", environment: [:])
        }
        let text = errors?.description ?? ""
        #expect(text.contains("log.toml:3") && text.contains("log_format") && text.contains("yaml"), "\(text)")
        #expect(text.contains("text, json"), "\(text)")
    }
}

import AMQP
import FoundationEssentials
import Glibc
import Logging
import Synchronization

/// A swift-log handler that writes one JSON object per line (JSON Lines), for log shippers that parse rather than
/// grep: `amqp-worker --log-format json`.
///
/// Each line has `time` (UTC, ISO 8601 with microseconds), `level`, `message`, `label` (the logger's) and `source`
/// (the module), then every metadata entry at the top level: the handler's (such as `worker`, the worker's node
/// name), the metadata provider's and the log call's, later ones winning (`task`, `task_id` on a task's lines).
/// A metadata key that clashes with one of those fields (or `error`, the logged error's description) is written
/// as `metadata.<key>`. Text is escaped as JSON
/// requires (quotes, backslashes, control characters, so a newline in a message stays inside its line; U+2028 and
/// U+2029 too, for readers that split lines on them); other Unicode is written as UTF-8.
public struct JSONLogHandler: LogHandler {
    /// Where lines go: one write per line, under a lock, so lines from different threads never interleave.
    public final class Output: Sendable {
        private let write: Mutex<@Sendable (Data) -> Void>

        /// Lines go to `write`, one call per line (newline included).
        public init(_ write: @escaping @Sendable (Data) -> Void) {
            self.write = Mutex(write)
        }

        /// Standard error. A line that cannot be written (stderr closed) is dropped: logging never stops a worker.
        public static func standardError() -> Output {
            Output { try? OutputFile.standardError.write($0) }
        }

        func emit(_ line: Data) {
            write.withLock { $0(line) }
        }
    }

    /// The fields every line has; metadata keys equal to one of them are renamed `metadata.<key>`.
    static let reservedFields: Set<String> = ["time", "level", "message", "label", "source", "error"]

    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata
    public var metadataProvider: Logger.MetadataProvider?
    private let output: Output

    /// A handler for the logger `label` that writes to `output`, with `metadata` on every line.
    public init(
        label: String, output: Output, metadata: Logger.Metadata = [:],
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.output = output
        self.metadata = metadata
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        output.emit(line(for: event, at: Date()))
    }

    /// The JSON line (newline included) for `event` logged at `time`.
    func line(for event: LogEvent, at time: Date) -> Data {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        var fields: [String: JSONValue] = [:]
        for (key, value) in merged {
            fields[Self.reservedFields.contains(key) ? "metadata.\(key)" : key] = Self.json(value)
        }
        fields["time"] = .string(Self.timestamp(time))
        fields["level"] = .string(event.level.rawValue)
        fields["message"] = .string(event.message.description)
        fields["label"] = .string(label)
        fields["source"] = .string(event.source)
        if let error = event.error { fields["error"] = .string(String(describing: error)) }
        let text = JSONValue.object(fields).jsonString
            .replacing("\u{2028}", with: "\\u2028")
            .replacing("\u{2029}", with: "\\u2029")
        return Data((text + "\n").utf8)
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let entries): .object(entries.mapValues(json))
        }
    }

    /// `2026-01-02T03:04:05.678901Z`: UTC, microseconds.
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        var micros = Int(((interval - Double(seconds)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            seconds += 1
            micros -= 1_000_000
        }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            cFormat: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), micros)
    }
}

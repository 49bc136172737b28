import AMQP
import FoundationEssentials

/// A W3C Trace Context `traceparent` header (https://www.w3.org/TR/trace-context/): version, trace id, parent span
/// id and flags, as `00-<32 hex>-<16 hex>-<2 hex>`. Celery's OpenTelemetry instrumentation sends it (and
/// `tracestate`) as AMQP headers of the task message.
public struct TraceParent: Sendable, Hashable, CustomStringConvertible {
    /// 32 lowercase hex digits, not all zero.
    public let traceID: String
    /// 16 lowercase hex digits, not all zero.
    public let spanID: String
    /// Bit 0 is `sampled`.
    public let flags: UInt8

    /// A traceparent with these ids; nil when they are not lowercase hex of the right length, or all zero.
    public init?(traceID: String, spanID: String, flags: UInt8 = 1) {
        guard Self.isID(traceID, length: 32), Self.isID(spanID, length: 16) else { return nil }
        self.traceID = traceID
        self.spanID = spanID
        self.flags = flags
    }

    /// Parses a header value; nil for anything malformed (a caller then starts a new trace, as the specification
    /// asks). Versions above 00 are read by their first four fields, as the specification asks too.
    public init?(header: String) {
        let value = header.trimmingWhitespace()
        let fields = value.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 4, fields[0].count == 2, Self.isHex(fields[0]), fields[0] != "ff",
            fields[3].count == 2, Self.isHex(fields[3]), let flags = UInt8(fields[3], radix: 16)
        else { return nil }
        // Version 00 has exactly four fields; a later version may append more.
        if fields[0] == "00" && fields.count != 4 { return nil }
        self.init(traceID: fields[1], spanID: fields[2], flags: flags)
    }

    /// The header value: `00-<trace id>-<span id>-<flags>`.
    public var description: String {
        "00-\(traceID)-\(spanID)-\(LowercaseHex.string(CollectionOfOne(flags)))"
    }

    /// New random ids: a trace id (16 bytes) and a span id (8 bytes), as lowercase hex.
    public static func randomTraceID() -> String { LowercaseHex.randomNonZero(bytes: 16) }
    public static func randomSpanID() -> String { LowercaseHex.randomNonZero(bytes: 8) }

    private static func isID(_ value: String, length: Int) -> Bool {
        value.utf8.count == length && isHex(value) && value.contains(where: { $0 != "0" })
    }

    private static func isHex(_ value: String) -> Bool {
        value.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

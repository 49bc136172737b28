@testable import AMQP
import CRabbitMQ
import Foundation
import Testing

/// `BasicProperties.encodedSize` lets a publish skip encoding its properties to check that they fit one frame
/// (`ContentHeaderFit`): it must be exactly what rabbitmq-c encodes, for every field type and nesting, with and
/// without each fixed-width property (delivery mode, priority, timestamp).
@Suite struct EncodedSizeBoundTests {
    /// What rabbitmq-c encodes `properties` to, in bytes.
    func encodedSize(_ properties: BasicProperties) throws -> Int {
        let arena = CArena()
        var c = arena.properties(properties)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let size = buffer.withUnsafeMutableBytes { raw in
            amqp_encode_properties(UInt16(AMQP_BASIC_CLASS), &c, amqp_bytes_t(len: raw.count, bytes: raw.baseAddress))
        }
        try #require(size > 0, "rabbitmq-c could not encode: \(size)")
        return Int(size)
    }

    @Test func theComputedSizeIsTheEncodedSize() throws {
        let every: FieldTable = [
            "bool": .bool(true), "i8": .int8(-1), "u8": .uint8(1), "i16": .int16(-2), "u16": .uint16(2),
            "i32": .int32(-3), "u32": .uint32(3), "i64": .int64(-4), "u64": .uint64(4), "f32": .float(1.5),
            "f64": .double(2.5), "decimal": .decimal(.init(scale: 2, value: 12345)), "string": "héllo",
            "bytes": .bytes([0, 1, 2]), "time": .timestamp(Date(timeIntervalSince1970: 1_800_000_000)), "void": .void,
        ]
        let nested: FieldTable = [
            "table": .table(every), "array": .array([.int32(1), "two", .array([.table(["k": "v"])]), .void]),
            "empty": .table([:]), "none": .array([]),
        ]
        let cases: [BasicProperties] = [
            BasicProperties(),
            BasicProperties(headers: [:]),
            BasicProperties(headers: every),
            BasicProperties(
                contentType: "application/json", contentEncoding: "utf-8", headers: nested, deliveryMode: 2,
                priority: 9, correlationId: "c", replyTo: "r", expiration: "60000", messageId: "m",
                timestamp: Date(timeIntervalSince1970: 1_800_000_000), type: "t", userId: "guest", appId: "a",
                clusterId: "x"),
            BasicProperties(headers: ["big": .string(String(repeating: "x", count: 100_000))]),
            BasicProperties(deliveryMode: 2),
            BasicProperties(priority: 0),
            BasicProperties(timestamp: Date(timeIntervalSince1970: 0)),
            BasicProperties(headers: every, deliveryMode: 1, correlationId: "c"),
        ]
        for properties in cases {
            let encoded = try encodedSize(properties)
            #expect(properties.encodedSize == encoded, "\(properties)")
        }
    }
}

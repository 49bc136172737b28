import AMQP
import Foundation
import Testing

/// Every field type and every basic property survives a trip through a real broker.
@Suite struct FieldTableRoundTripTests {
    static let everyType: FieldTable = [
        "bool": .bool(true),
        "int8": .int8(-8),
        "uint8": .uint8(200),
        "int16": .int16(-16000),
        "uint16": .uint16(65000),
        "int32": .int32(-2_000_000_000),
        "uint32": .uint32(4_000_000_000),
        "int64": .int64(-9_000_000_000_000),
        "uint64": .uint64(18_000_000_000_000_000_000),
        "float": .float(1.5),
        "double": .double(3.141592653589793),
        "decimal": .decimal(.init(scale: 2, value: 12345)),
        "string": .string("grüße ✓"),
        "bytes": .bytes([0, 1, 2, 255]),
        "timestamp": .timestamp(Date(timeIntervalSince1970: 1_795_620_141)),
        "table": .table(["nested": .table(["deep": .int32(1)]), "list": [1, "two", nil]]),
        "array": .array([.int32(1), .string("a"), .void, .bool(false), .double(2.5), .array([])]),
        "void": .void,
        "empty-table": .table([:]),
    ]

    @Test func everyFieldTypeSurvivesABrokerRoundTrip() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let queue = try await channel.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
        try await channel.confirmSelect()
        try await channel.publish(
            Data("x".utf8), routingKey: queue, properties: BasicProperties(headers: Self.everyType))
        let delivery = try #require(try await channel.get(queue: queue, autoAck: true))
        let headers = try #require(delivery.properties.headers)
        for (key, value) in Self.everyType {
            #expect(headers[key] == value, "header \(key)")
        }
        #expect(headers.keys == Self.everyType.keys, "order is kept")
        await connection.close()
    }

    @Test func everyBasicPropertySurvivesABrokerRoundTrip() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let queue = try await channel.declareQueue(
            "", durable: false, exclusive: true, autoDelete: true, arguments: ["x-max-priority": 9]
        ).name
        try await channel.confirmSelect()
        let properties = BasicProperties(
            contentType: "application/json", contentEncoding: "utf-8", headers: ["task": "demo.add"],
            deliveryMode: BasicProperties.DeliveryMode.persistent, priority: 7, correlationId: "corr-1",
            replyTo: "replies", expiration: "60000", messageId: "msg-1",
            timestamp: Date(timeIntervalSince1970: 1_700_000_000), type: "task", userId: "guest", appId: "tests",
            clusterId: "c1")
        let body = Data((0..<300_000).map { UInt8($0 % 251) })
        try await channel.publish(body, routingKey: queue, properties: properties)
        let delivery = try #require(try await channel.get(queue: queue))
        #expect(delivery.properties == properties)
        #expect(delivery.body == body, "a body larger than one frame is reassembled")
        #expect(delivery.redelivered == false)
        #expect(delivery.routingKey == queue)
        #expect(delivery.exchange == "")
        try await delivery.ack()
        await connection.close()
    }
}

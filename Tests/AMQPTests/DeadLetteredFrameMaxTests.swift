@testable import AMQP
import Foundation
import Testing

/// The broker adds headers to a message it dead-letters (`x-death`, `x-first-death-*`), in the same content header
/// frame, which AMQP never splits. A message whose properties filled a publisher's frame at the broker's frame size
/// comes out of a TTL or delay queue larger than any consumer's frame size: the consuming connection must not be
/// dropped at each delivery of it (a redelivery loop in which it is never handled).
@Suite struct DeadLetteredFrameMaxTests {
    @Test func aMessageThatFilledItsFrameIsStillDeliveredAfterDeadLettering() async throws {
        let publisher = try await TestBroker.connect()
        let channel = try await publisher.openChannel()
        try await channel.confirmSelect()
        let target = uniqueName("test.dlx-frame.target")
        let expiring = uniqueName("test.dlx-frame.ttl")
        _ = try await channel.declareQueue(target, durable: false)
        _ = try await channel.declareQueue(
            expiring, durable: false,
            arguments: [
                "x-message-ttl": .int32(0), "x-dead-letter-exchange": .string(""),
                "x-dead-letter-routing-key": .string(target),
            ])
        // Properties exactly as large as one frame at the broker's frame size (131,072 bytes) holds: accepted.
        let room = 131_072 - ConnectionCore.contentHeaderFrameOverhead
        var properties = BasicProperties(headers: ["big": .string("")])
        let filler = room - properties.encodedSize
        properties.headers = ["big": .string(String(repeating: "h", count: filler))]
        #expect(properties.encodedSize == room)
        try await channel.publish(OutgoingMessage(body: Data("payload".utf8), routingKey: expiring, properties: properties))

        let consuming = try await Connection.open(
            try ConnectionConfiguration(url: TestBroker.url).consuming)
        let consumerChannel = try await consuming.openChannel()
        let consumer = try await consumerChannel.consume(queue: target)
        let delivery = try? await withTimeout(20) {
            var iterator = consumer.makeAsyncIterator()
            return try await iterator.next()
        }
        #expect(delivery?.properties.headers?["x-death"] != nil, "delivered, dead-lettered once")
        #expect(delivery?.redelivered == false, "at the first delivery, not after a dropped connection")
        #expect(consuming.isOpen, "the consuming connection was not dropped")
        try? await delivery?.ack()
        _ = try? await channel.deleteQueue(target)
        _ = try? await channel.deleteQueue(expiring)
        await consuming.close()
        await publisher.close()
    }

    /// A consuming connection accepts larger frames than the negotiated size, but sends none: a body larger than
    /// one frame is cut at the negotiated size (a larger frame would make the broker close the connection), and
    /// properties that do not fit a negotiated frame are still refused before anything is sent.
    @Test func aConsumingConnectionSendsFramesOfTheNegotiatedSizeOnly() async throws {
        let connection = try await Connection.open(try ConnectionConfiguration(url: TestBroker.url).consuming)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let queue = uniqueName("test.consuming-sends")
        _ = try await channel.declareQueue(queue, durable: false)
        let body = Data((0..<400_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })  // three frames at 131,072
        try await channel.publish(OutgoingMessage(body: body, routingKey: queue))
        var tooLarge = BasicProperties(headers: ["big": .string("")])
        tooLarge.headers = ["big": .string(String(repeating: "h", count: 131_072 - 20 - tooLarge.encodedSize + 1))]
        let error = await expectAMQPError {
            try await channel.publish(OutgoingMessage(body: Data(), routingKey: queue, properties: tooLarge))
        }
        #expect(error?.description.contains("frame_max 131072") == true, "\(String(describing: error))")
        let delivery = try await channel.get(queue: queue, autoAck: true)
        #expect(delivery?.body == body, "the body arrives whole")
        #expect(connection.isOpen, "the broker saw no frame larger than the negotiated size")
        _ = try await channel.deleteQueue(queue)
        await connection.close()
    }
}

import AMQP
import Foundation
import Testing

/// A connection that consumes accepts every message the broker delivers, whatever `frame_max` its URL asks for:
/// AMQP never splits a message's properties and headers, so a publisher at the broker's frame size (131,072 bytes,
/// RabbitMQ's default) sends content headers larger than a small `frame_max`. rabbitmq-c dropped such a connection
/// (a frame larger than its frame_max), and the broker redelivered the message to the next one: a loop.
@Suite struct ConsumingFrameMaxTests {
    @Test func aConsumerAskingForASmallFrameMaxReceivesHeadersLargerThanIt() async throws {
        let publisher = try await TestBroker.connect()
        let channel = try await publisher.openChannel()
        try await channel.confirmSelect()
        let queue = uniqueName("test.frame-max")
        _ = try await channel.declareQueue(queue, durable: false, autoDelete: false)
        var properties = BasicProperties()
        let big = String(repeating: "h", count: 20_000)  // 20 KB of headers: more than 8192, less than 131,072
        properties.headers = ["big": .string(big)]
        try await channel.publish(OutgoingMessage(body: Data("payload".utf8), routingKey: queue, properties: properties))

        var configuration = try ConnectionConfiguration(url: TestBroker.url + "?frame_max=8192").consuming
        configuration.connectionName = "test: \(#function)"
        let consuming = try await Connection.open(configuration)
        let consumerChannel = try await consuming.openChannel()
        let consumer = try await consumerChannel.consume(queue: queue)
        let delivery = try await withTimeout(30) {
            var iterator = consumer.makeAsyncIterator()
            return try await iterator.next()
        }
        #expect(delivery?.properties.headers?["big"] == .string(big), "delivered whole")
        #expect(delivery?.redelivered == false, "at the first delivery, not after a dropped connection")
        try await delivery?.ack()
        #expect(consuming.isOpen, "the consuming connection was not dropped")
        try await consumerChannel.cancel(consumerTag: consumer.tag)
        _ = try await channel.deleteQueue(queue)
        await consuming.close()
        await publisher.close()
    }

    @Test func aPublishingConnectionKeepsTheFrameMaxItAskedFor() async throws {
        let connection = try await Connection.open(ConnectionConfiguration(url: TestBroker.url + "?frame_max=8192"))
        let channel = try await connection.openChannel()
        var properties = BasicProperties()
        properties.headers = ["big": .string(String(repeating: "h", count: 9000))]
        let error = await expectAMQPError {
            try await channel.publish(OutgoingMessage(body: Data(), routingKey: "nowhere", properties: properties))
        }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.description.contains("frame_max 8192") == true, "the frame size it asked for: \(String(describing: error))")
        await connection.close()
    }
}

import AMQP
import Foundation
import Testing

@Suite struct ConsumerTests {
    @Test func prefetchOneGivesOneUnackedDeliveryAtATime() async throws {
        let connection = try await TestBroker.connect()
        let publisher = try await connection.openChannel()
        let queue = try await publisher.declareQueue("", durable: false, exclusive: true).name
        try await publisher.confirmSelect()
        for i in 0..<5 { try await publisher.publish(Data("\(i)".utf8), routingKey: queue) }

        let channel = try await connection.openChannel()
        try await channel.setPrefetch(1)
        let consumer = try await channel.consume(queue: queue)
        var received = 0
        for try await delivery in consumer {
            #expect(String(decoding: delivery.body, as: UTF8.self) == "\(received)")
            received += 1
            // While this delivery is unacked the broker holds every other message back as ready.
            try await Task.sleep(for: .milliseconds(150))
            let state = try await publisher.inspectQueue(queue)
            #expect(state.messageCount == UInt32(5 - received), "only one message is out at a time")
            #expect(state.consumerCount == 1)
            try await delivery.ack()
            if received == 5 { break }
        }
        #expect(received == 5)
        await connection.close()
    }

    @Test func deliveryHeldForThreeHeartbeatIntervalsIsAckedOnTheSameConnection() async throws {
        let connection = try await TestBroker.connect(heartbeat: .seconds(2))
        let channel = try await connection.openChannel()
        let queue = try await channel.declareQueue("", durable: false, exclusive: true).name
        try await channel.confirmSelect()
        try await channel.publish(Data("long task".utf8), routingKey: queue)
        try await channel.setPrefetch(1)
        let consumer = try await channel.consume(queue: queue)
        var iterator = consumer.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        // User code busy for 3 heartbeat intervals: the I/O thread keeps the connection alive meanwhile.
        try await Task.sleep(for: .seconds(6.5))
        #expect(connection.isOpen)
        try await delivery.ack()
        try await channel.cancel(consumerTag: consumer.tag)
        let state = try await channel.inspectQueue(queue)
        #expect(state.messageCount == 0, "the ack reached the broker: nothing was requeued")
        #expect(delivery.redelivered == false)
        await connection.close()
    }

    @Test func nackRequeuesWithRedeliveredAndRejectDeadLetters() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let deadExchange = uniqueName("dlx")
        try await channel.declareExchange(deadExchange, type: .fanout, durable: false, autoDelete: true)
        let dead = try await channel.declareQueue("", durable: false, exclusive: true).name
        try await channel.bindQueue(dead, to: deadExchange)
        let queue = try await channel.declareQueue(
            "", durable: false, exclusive: true, arguments: ["x-dead-letter-exchange": .string(deadExchange)]
        ).name
        try await channel.confirmSelect()
        try await channel.publish(Data("m".utf8), routingKey: queue)

        let first = try #require(try await channel.get(queue: queue))
        #expect(first.redelivered == false)
        #expect(first.messageCount == 0)
        try await first.nack(requeue: true)
        let second = try #require(try await channel.get(queue: queue))
        #expect(second.redelivered == true)
        try await second.reject(requeue: false)

        try await Task.sleep(for: .milliseconds(200))
        let deadLettered = try #require(try await channel.get(queue: dead, autoAck: true))
        #expect(String(decoding: deadLettered.body, as: UTF8.self) == "m")
        let death = try #require(deadLettered.properties.headers?["x-death"]?.arrayValue?.first?.tableValue)
        #expect(death["reason"] == "rejected")
        #expect(death["queue"] == .string(queue))
        #expect(try await channel.get(queue: queue) == nil, "basic.get on an empty queue gives nil")
        await connection.close()
    }

    @Test func brokerCancelEndsTheConsumerWithATypedError() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let queue = uniqueName("cancelled")
        try await channel.declareQueue(queue, durable: false)
        let consumer = try await channel.consume(queue: queue)
        let other = try await connection.openChannel()
        try await other.deleteQueue(queue)
        let error = await expectAMQPError {
            try await withTimeout(10) { for try await _ in consumer {} }
        }
        #expect(error?.kind == .consumerCancelledByServer)
        #expect(connection.isOpen)
        await connection.close()
    }

    @Test func cancelledConsumerEndsAndItsUnsettledMessagesReturnToTheQueue() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let queue = try await channel.declareQueue("", durable: false, exclusive: true).name
        try await channel.confirmSelect()
        for i in 0..<3 { try await channel.publish(Data("\(i)".utf8), routingKey: queue) }
        let consumerChannel = try await connection.openChannel()
        try await consumerChannel.setPrefetch(10)
        let consumer = try await consumerChannel.consume(queue: queue)
        var count = 0
        for try await delivery in consumer {
            count += 1
            if count == 1 {
                try await delivery.ack()
                try await consumer.cancel()
            }
        }
        #expect(count >= 1, "the sequence ends after cancel")
        try await consumerChannel.close()
        // The queue takes the unacked deliveries back on its own, just after channel.close-ok: look until it has.
        var ready = try await channel.inspectQueue(queue).messageCount
        for _ in 0..<50 where ready < 2 {
            try await Task.sleep(for: .milliseconds(100))
            ready = try await channel.inspectQueue(queue).messageCount
        }
        #expect(ready == 2, "unacked deliveries went back")
        await connection.close()
    }

    @Test func unknownDeliveryTagClosesTheChannelWith406() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        try await channel.ack(deliveryTag: 999)
        // basic.ack has no reply: the error arrives as channel.close, seen by the next call on the channel.
        let error = await expectAMQPError {
            try await withTimeout(10) {
                try await Task.sleep(for: .milliseconds(200))
                try await channel.declareQueue("", exclusive: true)
            }
        }
        #expect(error?.replyCode == .preconditionFailed || error?.kind == .closed)
        #expect(connection.isOpen)
        await connection.close()
    }
}

import AMQP
import Foundation
import Testing

@Suite struct PublisherConfirmTests {
    @Test func tenThousandConfirmedPublishesArriveAllAndInOrder() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let queue = uniqueName("confirms")
        try await channel.declareQueue(queue, durable: true)
        try await channel.confirmSelect()

        // One by one (each waits for its confirm), then pipelined in one batch.
        for i in 0..<200 {
            try await channel.publish(
                Data("\(i)".utf8), routingKey: queue,
                properties: BasicProperties(deliveryMode: BasicProperties.DeliveryMode.persistent))
        }
        let batch = (200..<10_000).map { i in
            OutgoingMessage(
                body: Data("\(i)".utf8), routingKey: queue,
                properties: BasicProperties(deliveryMode: BasicProperties.DeliveryMode.persistent))
        }
        let results = try await channel.publish(batch: batch)
        #expect(results.count == batch.count)
        #expect(results.allSatisfy { (try? $0.get()) != nil }, "every message confirmed")
        #expect(try await channel.inspectQueue(queue).messageCount == 10_000)

        let reader = try await connection.openChannel()
        try await reader.setPrefetch(500)
        let consumer = try await reader.consume(queue: queue)
        var expected = 0
        for try await delivery in consumer {
            #expect(String(decoding: delivery.body, as: UTF8.self) == "\(expected)", "in publish order")
            expected += 1
            if expected % 100 == 0 || expected == 10_000 {
                try await reader.ack(deliveryTag: delivery.deliveryTag, multiple: true)
            }
            if expected == 10_000 { break }
        }
        #expect(expected == 10_000)
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    @Test func concurrentPublishersShareOneChannelAndAllAreConfirmed() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let queue = try await channel.declareQueue("", durable: false, exclusive: true).name
        try await channel.confirmSelect()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<20 {
                group.addTask {
                    for i in 0..<50 {
                        try await channel.publish(Data("\(task)-\(i)".utf8), routingKey: queue)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await channel.inspectQueue(queue).messageCount == 1000)
        await connection.close()
    }

    @Test func mandatoryUnroutablePublishFailsWithNoRoute() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let exchange = uniqueName("unroutable")
        try await channel.declareExchange(exchange, type: .direct, durable: false, autoDelete: true)
        try await channel.confirmSelect()
        let error = await expectAMQPError {
            try await channel.publish(Data("lost?".utf8), exchange: exchange, routingKey: "nobody", mandatory: true)
        }
        #expect(error?.kind == .unroutable)
        #expect(error?.replyCode == .noRoute)
        #expect("\(error!)".contains("nobody"))

        // Interleaved with routable publishes, only the unroutable ones fail.
        let queue = try await channel.declareQueue("", durable: false, exclusive: true).name
        try await channel.bindQueue(queue, to: exchange, routingKey: "somebody")
        let messages = (0..<100).map { i in
            OutgoingMessage(
                body: Data("\(i)".utf8), exchange: exchange, routingKey: i % 3 == 0 ? "nobody" : "somebody",
                mandatory: true)
        }
        let results = try await channel.publish(batch: messages)
        for (i, result) in results.enumerated() {
            if i % 3 == 0 {
                #expect(throws: AMQPError.self) { try result.get() }
            } else {
                #expect(throws: Never.self) { try result.get() }
            }
        }
        #expect(try await channel.inspectQueue(queue).messageCount == 66)
        #expect(connection.isOpen, "a returned message is not an error of the channel")
        try await channel.deleteExchange(exchange)
        await connection.close()
    }
}

import AMQP
import Foundation
import Testing

/// Names that do not fit in an AMQP short string (255 bytes) are refused by every method that carries them, before
/// anything is written: a clear `.invalidArgument` naming the field, and the channel and connection go on. (Before,
/// rabbitmq-c failed while encoding the method, which cost the whole connection.)
@Suite struct ShortStringMethodTests {
    static let long = String(repeating: "n", count: 256)

    @Test func overlongNamesAreRefusedByEveryMethodAndTheConnectionGoesOn() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let queue = try await channel.declareQueue("", durable: false, exclusive: true).name
        let exchange = uniqueName("shortstrings")
        try await channel.declareExchange(exchange, type: .fanout, durable: false, autoDelete: true)
        let long = Self.long
        let calls: [(String, String, @Sendable () async throws -> Void)] = [
            ("exchange.declare", "exchange name", { try await channel.declareExchange(long, durable: false) }),
            ("exchange.declare", "exchange type", {
                try await channel.declareExchange(uniqueName("x"), type: ExchangeType(rawValue: long), durable: false)
            }),
            ("exchange.declare", "argument name", {
                try await channel.declareExchange(uniqueName("x"), durable: false, arguments: [long: 1])
            }),
            ("exchange.delete", "exchange name", { try await channel.deleteExchange(long) }),
            ("exchange.bind", "routing key", { try await channel.bindExchange(exchange, to: "amq.direct", routingKey: long) }),
            ("exchange.bind", "source exchange name", { try await channel.bindExchange(exchange, to: long) }),
            ("queue.declare", "queue name", { try await channel.declareQueue(long, durable: false) }),
            ("queue.declare", "argument name", {
                try await channel.declareQueue("", durable: false, exclusive: true, arguments: ["x": .table([long: 1])])
            }),
            ("queue.bind", "routing key", { try await channel.bindQueue(queue, to: exchange, routingKey: long) }),
            ("queue.unbind", "exchange name", { try await channel.unbindQueue(queue, from: long) }),
            ("queue.purge", "queue name", { _ = try await channel.purgeQueue(long) }),
            ("queue.delete", "queue name", { _ = try await channel.deleteQueue(long) }),
            ("basic.consume", "queue name", { _ = try await channel.consume(queue: long) }),
            ("basic.consume", "consumer tag", { _ = try await channel.consume(queue: queue, consumerTag: long) }),
            ("basic.get", "queue name", { _ = try await channel.get(queue: long) }),
        ]
        for (operation, field, call) in calls {
            let error = await expectAMQPError { try await call() }
            #expect(error?.kind == .invalidArgument, "\(operation) with an overlong \(field): \(error.map { "\($0)" } ?? "")")
            #expect(error?.operation == operation)
            #expect(error?.message.contains(field) == true && error?.message.contains("256 bytes") == true, "\(error.map { "\($0)" } ?? "")")
            #expect(connection.isOpen && channel.isOpen, "\(operation) with an overlong \(field) cost the connection")
        }
        // The same channel still works: nothing half-written reached the broker.
        try await channel.bindQueue(queue, to: exchange)
        #expect(try await channel.inspectQueue(queue).consumerCount == 0)
        try await channel.deleteExchange(exchange)
        await connection.close()
    }
}

import AMQP
import Foundation
import Testing

/// AMQP transactions against the real broker, on quorum queues (the periodic scheduler's state queues are quorum
/// queues, and task queues may be).
@Suite struct TransactionTests {
    private func quorumQueue(_ channel: Channel, _ prefix: String) async throws -> String {
        let name = uniqueName(prefix)
        try await channel.declareQueue(name, durable: true, arguments: ["x-queue-type": .string("quorum")])
        return name
    }

    /// Every body in `queue`, taken with basic.get and acknowledged.
    private func drain(_ channel: Channel, _ queue: String) async throws -> [String] {
        var bodies: [String] = []
        while let delivery = try await channel.get(queue: queue) {
            bodies.append(String(decoding: delivery.body, as: UTF8.self))
            try await channel.ack(deliveryTag: delivery.deliveryTag)
        }
        return bodies
    }

    @Test func committedPublishesArriveAndRolledBackOnesDoNot() async throws {
        let connection = try await TestBroker.connect()
        let admin = try await connection.openChannel()
        let first = try await quorumQueue(admin, "tx.first")
        let second = try await quorumQueue(admin, "tx.second")
        let tx = try await connection.openChannel()
        try await tx.selectTransactions()

        try await tx.publish(Data("a1".utf8), routingKey: first)
        try await tx.publish(Data("b1".utf8), routingKey: second)
        #expect(try await admin.get(queue: first) == nil, "nothing arrives before the commit")
        try await tx.commit()

        try await tx.publish(Data("a2".utf8), routingKey: first)
        try await tx.publish(Data("b2".utf8), routingKey: second)
        try await tx.rollback()

        try await tx.publish(Data("a3".utf8), routingKey: first)
        try await tx.commit()

        #expect(try await drain(admin, first) == ["a1", "a3"])
        #expect(try await drain(admin, second) == ["b1"])
        try await admin.deleteQueue(first)
        try await admin.deleteQueue(second)
        await connection.close()
    }

    @Test func anAcknowledgementTakesEffectOnlyWhenCommitted() async throws {
        let connection = try await TestBroker.connect()
        let admin = try await connection.openChannel()
        let state = try await quorumQueue(admin, "tx.state")
        try await admin.confirmSelect()  // "old" is in the queue before the transaction looks
        try await admin.publish(Data("old".utf8), routingKey: state)

        let tx = try await connection.openChannel()
        try await tx.selectTransactions()
        let held = try #require(try await tx.get(queue: state))
        try await tx.ack(deliveryTag: held.deliveryTag)
        try await tx.publish(Data("new".utf8), routingKey: state)
        try await tx.rollback()
        try await tx.close()  // the rolled-back ack leaves "old" unacknowledged: closing returns it
        #expect(try await drain(admin, state) == ["old"])

        try await admin.publish(Data("old".utf8), routingKey: state)
        let tx2 = try await connection.openChannel()
        try await tx2.selectTransactions()
        let again = try #require(try await tx2.get(queue: state))
        try await tx2.ack(deliveryTag: again.deliveryTag)
        try await tx2.publish(Data("new".utf8), routingKey: state)
        try await tx2.commit()
        try await tx2.close()
        #expect(try await drain(admin, state) == ["new"], "the commit replaced old by new")
        try await admin.deleteQueue(state)
        await connection.close()
    }

    @Test func aConnectionDroppedBeforeCommitPublishesNothing() async throws {
        let observer = try await TestBroker.connect()
        let admin = try await observer.openChannel()
        let queue = try await quorumQueue(admin, "tx.dropped")

        // Closed by the client, and cut by the broker (as when the network or the node goes away).
        let closed = try await TestBroker.connect(name: "tx closed \(queue)")
        let tx = try await closed.openChannel()
        try await tx.selectTransactions()
        for i in 0..<10 { try await tx.publish(Data("lost \(i)".utf8), routingKey: queue) }
        await closed.close()

        let cutName = "tx cut \(queue)"
        let cut = try await TestBroker.connect(name: cutName)
        let cutChannel = try await cut.openChannel()
        try await cutChannel.selectTransactions()
        for i in 0..<10 { try await cutChannel.publish(Data("cut \(i)".utf8), routingKey: queue) }
        _ = try await cutChannel.inspectQueue(queue)  // a round trip: the broker has read the publishes
        let connections = try TestBroker.ctl(["list_connections", "pid", "client_properties", "--quiet", "--no-table-headers"])
        let pid = try #require(
            connections.split(separator: "\n").first { $0.contains("test: \(cutName)") }?.split(separator: "\t").first)
        try TestBroker.ctl(["close_connection", String(pid), "test: the connection is cut before its commit"])
        let commitError = await expectAMQPError { try await cutChannel.commit() }
        #expect(commitError != nil)

        // A later commit on another connection arrives: the queue works, and only that message is in it.
        let other = try await observer.openChannel()
        try await other.selectTransactions()
        try await other.publish(Data("kept".utf8), routingKey: queue)
        try await other.commit()
        #expect(try await drain(admin, queue) == ["kept"])
        try await admin.deleteQueue(queue)
        await observer.close()
    }

    @Test func aCommitReturnsItsMandatoryPublishesThatNoQueueTookAndAppliesTheRest() async throws {
        let connection = try await TestBroker.connect()
        let admin = try await connection.openChannel()
        let queue = try await quorumQueue(admin, "tx.returns")
        let tx = try await connection.openChannel()
        try await tx.selectTransactions()
        let nowhere = "tx.nowhere.\(UUID().uuidString)"
        try await tx.publish(OutgoingMessage(body: Data("lost".utf8), routingKey: nowhere, mandatory: true))
        try await tx.publish(OutgoingMessage(body: Data("kept".utf8), routingKey: queue, mandatory: true))
        let returned = try await tx.commit()
        #expect(returned.count == 1)
        #expect(returned.first?.kind == .unroutable)
        #expect(returned.first?.message.contains(nowhere) == true, "\(returned)")
        #expect(try await drain(admin, queue) == ["kept"])

        try await tx.publish(OutgoingMessage(body: Data("again".utf8), routingKey: queue, mandatory: true))
        #expect(try await tx.commit().isEmpty, "a commit reports only its own returns")
        #expect(try await drain(admin, queue) == ["again"])
        try await admin.deleteQueue(queue)
        await connection.close()
    }

    @Test func aChannelIsTransactionalOrConfirmingNeverBoth() async throws {
        let connection = try await TestBroker.connect()
        let tx = try await connection.openChannel()
        try await tx.selectTransactions()
        let confirmError = await expectAMQPError { try await tx.confirmSelect() }
        #expect(confirmError?.kind == .invalidArgument)

        let confirming = try await connection.openChannel()
        try await confirming.confirmSelect()
        let selectError = await expectAMQPError { try await confirming.selectTransactions() }
        #expect(selectError?.kind == .invalidArgument)
        let commitError = await expectAMQPError { try await confirming.commit() }
        #expect(commitError?.kind == .invalidArgument, "commit on a non-transactional channel is refused locally")
        await connection.close()
    }
}

import AMQP
import Foundation
import Testing

/// A durable queue that exists but cannot be reached, on a real broker: `isNodeDown` tells it from a missing queue
/// by the method the broker refused (a non-passive `queue.declare`), not by its text.
///
/// One node cannot take down the home node of its own queue. What the test can do is what RabbitMQ does to a queue
/// whose process crashed and could not restart: mark the queue's record `crashed` (`rabbitmqctl eval`). The broker
/// then answers as for a queue whose node is down, on the same path (`rabbit_amqqueue:with/3` gives
/// `{absent, Q, Reason}`, `rabbit_amqqueue:absent/2` answers 404 NOT_FOUND), with its own text: the text differs,
/// the structure (404 on a non-passive `queue.declare`) does not. (A record pointing at a dead process, the closer
/// imitation of a node that is down, makes RabbitMQ 3.10 retry for 60 s before it answers.)
@Suite struct NodeDownTests {
    static func setState(_ queue: String, _ state: String) throws {
        try TestBroker.ctl([
            "eval",
            """
            R = rabbit_misc:r(<<"/">>, queue, <<"\(queue)">>), {ok, Q} = rabbit_amqqueue:lookup(R), \
            rabbit_misc:execute_mnesia_transaction(fun() -> rabbit_amqqueue:store_queue(amqqueue:set_state(Q, \(state))) end).
            """,
        ])
    }

    @Test func aQueueThatExistsButCannotBeReachedIsToldFromAMissingOne() async throws {
        let queue = uniqueName("node-down")
        let connection = try await TestBroker.connect()
        try await connection.openChannel().declareQueue(queue, durable: true)
        try Self.setState(queue, "crashed")

        let declared = await expectAMQPError { try await connection.openChannel().declareQueue(queue, durable: true) }
        #expect(declared?.replyCode == .notFound)
        #expect(declared?.failedMethod == .queueDeclare)
        #expect(declared?.isNodeDown == true, "a non-passive declare answered 404: the queue exists but is unreachable")

        let inspected = await expectAMQPError { _ = try await connection.openChannel().inspectQueue(queue) }
        #expect(inspected?.replyCode == .notFound)
        #expect(inspected?.isNodeDown == false, "a passive 404 cannot tell; only the declare can")

        let missing = await expectAMQPError { _ = try await connection.openChannel().inspectQueue(uniqueName("missing")) }
        #expect(missing?.replyCode == .notFound)
        #expect(missing?.isNodeDown == false)

        try Self.setState(queue, "live")
        _ = try await connection.openChannel().deleteQueue(queue)
        await connection.close()
    }
}

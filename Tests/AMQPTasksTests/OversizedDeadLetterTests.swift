import AMQP
@testable import AMQPTasks
import Foundation
import Logging
import Testing

/// A task whose outcome cannot be recorded goes to `<queue>.dead` with the reason in headers. When the message's own
/// headers nearly fill a frame, the reason headers do not fit beside them (`.invalidArgument`, nothing sent); the
/// dead letter then goes without them (the message fits as it came, since it was delivered so) instead of failing,
/// which would requeue the task to fail the same way at every delivery.
@Suite struct OversizedDeadLetterTests {
    @Test func aDeadLetterWhoseReasonHeadersDoNotFitGoesWithoutThem() async throws {
        var configuration = try ConnectionConfiguration(url: Broker.url)
        configuration.frameMax = 8192  // 8172 bytes of properties at most
        let connection = try await Connection.open(configuration)
        let queue = uniqueQueue("bigdead")
        let slot = SlotChannel(connection: connection, prefetch: 1)
        let recorder = RecordStage(
            outbox: ChannelOutbox(slot: slot), queue: queue, configuration: try WorkerConfiguration(url: Broker.url),
            logger: Logger(label: "test.dead"))
        // About 7,000 bytes of headers: they fit, but not with a 4,000-byte error beside them.
        let headers: FieldTable = ["id": "big-headers-task", "note": .string(String(repeating: "h", count: 7000))]
        var properties = BasicProperties()
        properties.headers = headers
        properties.correlationId = "big-headers-task"
        let received = ReceivedMessage(body: Data("[[], {}, {}]".utf8), properties: properties, queue: queue)

        try await recorder.deadLetter(
            received, reason: DeadLetterReason.outcomeNotRecorded, error: String(repeating: "e", count: 5000))

        let channel = try await connection.openChannel()
        let dead = try await channel.get(queue: DeadLetters.name(for: queue), autoAck: true)
        #expect(dead?.body == received.body, "the task is kept in \(DeadLetters.name(for: queue))")
        #expect(dead?.properties.headers == headers, "as it came, without the reason headers")
        #expect(dead?.properties.correlationId == "big-headers-task")
        #expect(connection.isOpen)
        _ = try await channel.deleteQueue(DeadLetters.name(for: queue))
        try await channel.deleteExchange(DeadLetters.name(for: queue))
        await connection.close()
    }
}

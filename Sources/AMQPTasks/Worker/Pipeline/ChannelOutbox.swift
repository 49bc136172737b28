import AMQP
import FoundationEssentials
import Logging

/// The outbox of one consumer slot: its channel, in confirm mode, opened again if the broker closed it.
struct ChannelOutbox: TaskOutbox {
    let slot: SlotChannel
    var logger = Logger(label: "amqp-tasks.worker")

    func joinChord(_ member: ChordMember) async throws -> ChordJoin {
        try await ChordBarrier(connection: slot.current().connection, logger: logger).join(member)
    }

    func publish(_ message: OutgoingMessage) async throws { try await slot.current().publish(message) }

    func declareDeadLetters(for queue: String, quorum: Bool) async throws {
        try await DeadLetters.declare(for: queue, quorum: quorum, on: slot.current())
    }

    func park(_ message: OutgoingMessage, for queue: String, after delay: Duration) async throws {
        let channel = try await slot.current()
        do {
            try await NativeDelayedDelivery.publish(message, toQueue: queue, after: delay, on: channel)
        } catch let error as AMQPError where error.kind == .unroutable || error.replyCode == .notFound {
            // The levels were deleted since this worker declared them: declare them again (on channels of their
            // own), so the next attempt to record this task finds them.
            _ = try? await NativeDelayedDelivery.declare(on: channel.connection)
            throw error
        }
    }
}

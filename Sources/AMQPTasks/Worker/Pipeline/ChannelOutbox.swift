import AMQP
import Foundation

/// The outbox of one consumer slot: its channel, in confirm mode, opened again if the broker closed it.
struct ChannelOutbox: TaskOutbox {
    let slot: SlotChannel

    func publish(_ message: OutgoingMessage) async throws { try await slot.current().publish(message) }

    func declareDeadLetters(for queue: String, quorum: Bool) async throws {
        try await DeadLetters.declare(for: queue, quorum: quorum, on: slot.current())
    }

    func park(_ message: OutgoingMessage, for queue: String, after delay: Duration) async throws {
        try await DelayQueues.publish(message, to: queue, after: delay, on: slot.current())
    }
}

import AMQP
import Foundation

/// The outbox of one consumer: its channel, in confirm mode.
struct ChannelOutbox: TaskOutbox {
    let channel: Channel

    func publish(_ message: OutgoingMessage) async throws { try await channel.publish(message) }

    func declareDeadLetters(for queue: String, quorum: Bool) async throws {
        try await DeadLetters.declare(for: queue, quorum: quorum, on: channel)
    }

    func park(_ message: OutgoingMessage, for queue: String, after delay: Duration) async throws {
        try await DelayQueues.publish(message, to: queue, after: delay, on: channel)
    }
}

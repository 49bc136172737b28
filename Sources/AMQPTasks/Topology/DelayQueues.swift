import AMQP
import Foundation

/// Delayed delivery without plugins and without holding messages in worker memory.
///
/// A delay of N seconds uses the fanout exchange and queue `amqp-tasks.delay.<N>s`: the queue has
/// `x-message-ttl = N s` and dead-letters to the default exchange, which keeps the message's routing key, so a
/// message published there with routing key `Q` lands in queue `Q` N seconds later. One TTL per queue keeps it
/// FIFO (RabbitMQ only expires messages at the head of a queue, so mixed TTLs in one queue would wait on each
/// other). Each queue deletes itself (`x-expires`) once unused for twice its delay plus a minute; it is declared
/// again before every use, which also resets that timer.
public enum DelayQueues {
    /// Whole seconds, at least 1.
    public static func seconds(for delay: Double) -> Int { max(1, Int(delay.rounded(.up))) }

    public static func name(seconds: Int) -> String { "amqp-tasks.delay.\(seconds)s" }

    /// Declares the delay queue for `seconds` and returns the exchange to publish to.
    public static func declare(seconds: Int, on channel: Channel) async throws -> String {
        let name = name(seconds: seconds)
        try await channel.declareExchange(name, type: .fanout, durable: true)
        try await channel.declareQueue(
            name, durable: true,
            arguments: [
                "x-message-ttl": .int64(Int64(seconds) * 1000),
                "x-dead-letter-exchange": "",
                "x-expires": .int64(Int64(seconds) * 2000 + 60_000),
            ])
        try await channel.bindQueue(name, to: name)
        return name
    }

    /// Publishes `message` so it reaches `queue` after `delay` seconds; returns when confirmed.
    public static func publish(_ message: OutgoingMessage, to queue: String, after delay: Double, on channel: Channel)
        async throws
    {
        let exchange = try await declare(seconds: seconds(for: delay), on: channel)
        var delayed = message
        delayed.exchange = exchange
        delayed.routingKey = queue
        delayed.mandatory = true
        try await channel.publish(delayed)
    }
}

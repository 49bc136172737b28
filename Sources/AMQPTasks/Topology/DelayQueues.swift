import AMQP
import Foundation

/// Delayed delivery without plugins and without holding messages in worker memory.
///
/// A message waits in one of a fixed set of delay queues, `amqp-tasks.delay.quorum.<N>s` with N a power of two
/// from 1 s to 2^21 s (about 24 days), each with its fanout exchange of the same name. A queue has
/// `x-message-ttl = N s` and dead-letters to the due exchange (below), keeping the message's routing key, so a
/// message published there with routing key `Q` lands in queue `Q` N seconds later. One TTL per queue keeps it
/// FIFO (RabbitMQ expires messages only at the head of a queue).
///
/// A delay is waited out in steps: the worker parks the message for the longest power of two that fits in what is
/// left, and when it comes back early (its `eta` still ahead) parks it again. So there are at most 22 delay queues
/// and exchanges whatever the delays, and no delay exceeds RabbitMQ's 2^32−1 ms limits on TTLs.
///
/// The queues are quorum queues with at-least-once dead-lettering (`x-dead-letter-strategy = at-least-once`,
/// which RabbitMQ allows with `x-overflow = reject-publish`): a task queue that refuses the expired message (no
/// leader for a moment, or full) leaves it in the delay queue, which retries, instead of dropping it as a classic
/// queue's at-most-once dead-lettering would. They are replicated like the task queues and never expire.
///
/// Expired messages go to the direct exchange `amqp-tasks.due`, to which every worker binds the queues it
/// consumes (routing key = queue name). A message whose queue is gone (deleted while the task waited) has no
/// binding there, so the exchange's alternate exchange puts it in `amqp-tasks.due.unroutable`, where it waits
/// to be looked at: it is not lost, and it never blocks the delayed tasks behind it (RabbitMQ's dead-letter process
/// takes only 32 messages of a queue at a time, so a few dozen waiting for a missing queue would stall the rest).
public enum DelayQueues {
    /// Where delay queues send what is due; task queues are bound to it by their name.
    public static let dueExchange = "amqp-tasks.due"
    /// Delayed tasks whose queue no longer exists.
    public static let unroutable = "amqp-tasks.due.unroutable"

    /// Declares the due exchange and where its unroutable messages go.
    public static func declareDue(on channel: Channel) async throws {
        try await channel.declareExchange(unroutable, type: .fanout, durable: true)
        try await channel.declareQueue(unroutable, durable: true, arguments: ["x-queue-type": "quorum"])
        try await channel.bindQueue(unroutable, to: unroutable)
        try await channel.declareExchange(
            dueExchange, type: .direct, durable: true, arguments: ["alternate-exchange": .string(unroutable)])
    }

    /// Lets `queue` receive the delayed tasks parked for it (a worker does this for each queue it consumes).
    public static func bindTarget(_ queue: String, on channel: Channel) async throws {
        try await declareDue(on: channel)
        try await channel.bindQueue(queue, to: dueExchange, routingKey: queue)
    }

    /// The longest single wait, 2^21 s (about 24 days).
    public static let longestStep = 1 << 21

    /// The step to wait for `delay`: the longest power of two seconds that fits, at least 1 s and at most
    /// `longestStep` seconds. Negative delays wait 1 s.
    public static func step(for delay: Duration) -> Duration {
        .seconds(stepSeconds(for: delay.secondsValue))
    }

    /// `step(for:)` in whole seconds; not-a-number waits 1 s.
    private static func stepSeconds(for delay: Double) -> Int {
        guard delay.isFinite else { return delay > 0 ? longestStep : 1 }
        guard delay >= 2 else { return 1 }
        guard delay < Double(longestStep) else { return longestStep }
        var step = 1
        while step * 2 <= Int(delay) { step *= 2 }
        return step
    }

    public static func name(seconds: Int) -> String { "amqp-tasks.delay.quorum.\(seconds)s" }

    /// Declares the delay queue for `seconds` (a power of two) and returns the exchange to publish to.
    public static func declare(seconds: Int, on channel: Channel) async throws -> String {
        let name = name(seconds: seconds)
        try await declareDue(on: channel)
        try await channel.declareExchange(name, type: .fanout, durable: true)
        try await channel.declareQueue(
            name, durable: true,
            arguments: [
                "x-queue-type": "quorum",
                "x-message-ttl": .int64(Int64(seconds) * 1000),
                "x-dead-letter-exchange": .string(dueExchange),
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            ])
        try await channel.bindQueue(name, to: name)
        return name
    }

    /// Publishes `message` so it reaches `queue` after at most `delay` (one step, see `step(for:)`); returns when
    /// confirmed. A message that must wait longer carries its `eta` and is parked again on arrival.
    public static func publish(_ message: OutgoingMessage, to queue: String, after delay: Duration, on channel: Channel)
        async throws
    {
        let exchange = try await declare(seconds: stepSeconds(for: delay.secondsValue), on: channel)
        var delayed = message
        delayed.exchange = exchange
        delayed.routingKey = queue
        delayed.mandatory = true
        try await channel.publish(delayed)
    }
}

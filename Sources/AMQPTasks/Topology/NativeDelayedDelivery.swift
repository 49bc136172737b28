import AMQP
import FoundationEssentials
import Logging

/// Delayed delivery through kombu's "native delayed delivery" topology (Celery 5.5+), shared with Celery clients
/// and workers: a delayed task waits in the broker, never in a worker's memory, and the number of delay queues is
/// fixed (28) whatever the delays.
///
/// Level `L` (0…27) is a topic exchange `celery_delayed_L` and a queue of the same name with
/// `x-message-ttl = 2^L s`, dead-lettering to the next level down (`celery_delayed_0` dead-letters to the topic
/// exchange `celery_delayed_delivery`). A delayed message is published to `celery_delayed_27` with the routing key
/// `b27.b26.….b0.<key>`: the delay in seconds as 28 binary digits, then the key the message would have had without
/// a delay. At each level a `1` digit routes the message into that level's queue (it waits 2^L s there), a `0`
/// passes it on to the next level's exchange at once. At the end, `celery_delayed_delivery` routes it by its
/// bindings: a Celery worker binds the exchange of each of its topic/fanout queues there with `#.<binding key>`,
/// and `amqp-worker` does the same plus bindings of its own (`DelayedDeliveryBindings`).
///
/// The queues and exchanges are declared with exactly kombu's properties and arguments, so either side declares
/// first without a 406. The levels are quorum queues (kombu's default `broker_native_delayed_delivery_queue_type`)
/// with at-least-once dead-lettering: a delayed task survives the loss of a node, and a level that cannot hand a
/// message on keeps it and tries again. Levels someone declared as classic queues are used as they are (logged).
public enum NativeDelayedDelivery {
    /// How many binary levels there are (kombu's `MAX_NUMBER_OF_BITS_TO_USE`).
    public static let levelCount = 28
    /// The longest delay the levels can express: 2^28 − 1 seconds (about 8.5 years).
    public static let longestDelaySeconds = (1 << levelCount) - 1
    /// Where a delayed message ends, routed by the key that follows the 28 digits.
    public static let deliveryExchange = "celery_delayed_delivery"
    /// Where delayed messages are published: the highest level.
    public static var entryExchange: String { levelName(levelCount - 1) }

    /// The exchange and queue of level `level` (0…27).
    public static func levelName(_ level: Int) -> String { "celery_delayed_\(level)" }

    /// The type of the level queues.
    public enum QueueType: String, Sendable {
        case quorum, classic

        var other: QueueType { self == .quorum ? .classic : .quorum }
    }

    /// The arguments kombu declares level `level`'s queue with, for `type`.
    public static func levelArguments(_ level: Int, type: QueueType) -> FieldTable {
        let ttl = Int64(1 << level) * 1000
        var arguments: FieldTable = [
            "x-queue-type": .string(type.rawValue),
            "x-overflow": "reject-publish",
            // py-amqp sends an int that fits 32 bits as a signed 32-bit value, a larger one as 64-bit.
            "x-message-ttl": ttl <= Int64(Int32.max) ? .int32(Int32(ttl)) : .int64(ttl),
            "x-dead-letter-exchange": .string(level > 0 ? levelName(level - 1) : deliveryExchange),
        ]
        if type == .quorum { arguments["x-dead-letter-strategy"] = "at-least-once" }
        return arguments
    }

    /// The key binding level `level`'s queue to its exchange: that level's digit is `1`.
    static func queueBindingKey(level: Int) -> String {
        String(repeating: "*.", count: levelCount - 1 - level) + "1.#"
    }

    /// The key binding the next level's exchange (or `celery_delayed_delivery` after level 0) to level `level`'s
    /// exchange: that level's digit is `0`.
    static func passOnBindingKey(level: Int) -> String {
        String(repeating: "*.", count: levelCount - 1 - level) + "0.#"
    }

    // MARK: Routing keys

    /// The whole seconds a message waits in the levels to be due after `remaining`: rounded up (it never arrives
    /// early), at least 1, at most `longestDelaySeconds` (a longer wait comes back and waits again).
    public static func delaySeconds(for remaining: Duration) -> Int {
        let seconds = remaining.secondsValue
        guard seconds.isFinite else { return seconds > 0 ? longestDelaySeconds : 1 }
        guard seconds > 1 else { return 1 }
        guard seconds < Double(longestDelaySeconds) else { return longestDelaySeconds }
        return Int(seconds.rounded(.up))
    }

    /// The routing key that makes `seconds` (1…`longestDelaySeconds`) of delay and then routes by `key` (a delay
    /// prefix `key` already has is replaced, as kombu does for a retried task).
    public static func routingKey(delaySeconds seconds: Int, key: String) -> String {
        precondition((1...longestDelaySeconds).contains(seconds), "delay \(seconds) s out of 1…\(longestDelaySeconds)")
        let digits = String(seconds, radix: 2)
        let padded = String(repeating: "0", count: levelCount - digits.count) + digits
        return padded.map(String.init).joined(separator: ".") + "." + strippingDelayPrefix(key)
    }

    /// `key` without the 28 binary digits a delayed message's routing key starts with (a delivered message still
    /// carries them): the key it would have had without a delay.
    public static func strippingDelayPrefix(_ key: String) -> String {
        let utf8 = Array(key.utf8)
        guard utf8.count >= levelCount * 2 else { return key }
        for index in 0..<levelCount {
            let digit = utf8[index * 2]
            guard digit == UInt8(ascii: "0") || digit == UInt8(ascii: "1"), utf8[index * 2 + 1] == UInt8(ascii: ".")
            else { return key }
        }
        return String(decoding: utf8[(levelCount * 2)...], as: UTF8.self)
    }

    /// The longest key a delayed message can carry after its 28 digits (AMQP's short strings hold 255 bytes).
    public static let longestKey = 255 - levelCount * 2

    // MARK: Declaring

    /// Declares the 28 levels and `celery_delayed_delivery` as kombu's
    /// `declare_native_delayed_delivery_exchanges_and_queues` does, on channels of its own. Level queues that
    /// exist as the other type (`preferred` is refused with 406 for `x-queue-type`) are used as they are: declared
    /// again with that type's arguments, and logged once. Returns the type of the levels.
    @discardableResult
    public static func declare(
        on connection: Connection, preferred: QueueType = .quorum, logger: Logger? = nil
    ) async throws -> QueueType {
        var channel = try await connection.openChannel()
        var used = preferred
        var adapted: [Int] = []
        for level in stride(from: levelCount - 1, through: 0, by: -1) {
            let name = levelName(level)
            try await channel.declareExchange(name, type: .topic, durable: true)
            do {
                try await channel.declareQueue(name, durable: true, arguments: levelArguments(level, type: used))
            } catch let error as AMQPError where error.replyCode == .preconditionFailed {
                // The 406 closed the channel. A level declared as the other type (Celery configured with
                // broker_native_delayed_delivery_queue_type = "classic", or the reverse) is what every side uses.
                channel = try await connection.openChannel()
                do {
                    try await channel.declareQueue(
                        name, durable: true, arguments: levelArguments(level, type: used.other))
                } catch let second as AMQPError where second.replyCode == .preconditionFailed {
                    throw Topology.Problem(
                        description:
                            "the delay queue \(name) exists with other arguments than kombu's native delayed delivery declares (\(error.message); \(second.message)): delete it after it is empty (rabbitmqctl delete_queue \(name) --if-empty) so it is declared again"
                    )
                }
                used = used.other
                adapted.append(level)
            }
            try await channel.bindQueue(name, to: name, routingKey: queueBindingKey(level: level))
        }
        for level in stride(from: levelCount - 1, through: 1, by: -1) {
            try await channel.bindExchange(
                levelName(level - 1), to: levelName(level), routingKey: passOnBindingKey(level: level))
        }
        try await channel.declareExchange(deliveryExchange, type: .topic, durable: true)
        try await channel.bindExchange(deliveryExchange, to: levelName(0), routingKey: passOnBindingKey(level: 0))
        try? await channel.close()
        if !adapted.isEmpty {
            logger?.warning(
                "the delay queues \(adapted.map(levelName).joined(separator: ", ")) exist as \(used.rawValue) queues, not \(preferred.rawValue): using them as they are (a Celery worker with broker_native_delayed_delivery_queue_type = \"\(used.rawValue)\" declared them so)"
            )
        }
        return used
    }

    // MARK: Publishing

    /// Publishes `message` so it arrives in `queue` (bound by `DelayedDeliveryBindings`) after
    /// `delaySeconds(for: delay)` seconds; returns when confirmed.
    public static func publish(
        _ message: OutgoingMessage, toQueue queue: String, after delay: Duration, on channel: Channel
    ) async throws {
        var delayed = message
        delayed.exchange = entryExchange
        delayed.routingKey = routingKey(delaySeconds: delaySeconds(for: delay), key: queue)
        delayed.mandatory = true
        try await channel.publish(delayed)
    }
}

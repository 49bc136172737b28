import FoundationEssentials
import Logging

/// A message to publish: body, properties and where it goes.
public struct OutgoingMessage: Sendable {
    public var body: Data
    public var exchange: String
    public var routingKey: String
    public var properties: BasicProperties
    /// Ask the broker to return the message (`basic.return`) when no queue takes it; the publish then fails with
    /// an `.unroutable` error instead of the message vanishing (on a transactional channel, `commit()` returns it).
    public var mandatory: Bool

    public init(
        body: Data, exchange: String = "", routingKey: String, properties: BasicProperties = BasicProperties(),
        mandatory: Bool = false
    ) {
        self.body = body
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.mandatory = mandatory
    }
}

/// A message the broker delivered (`basic.deliver`) or handed out (`basic.get`), with the means to settle it.
///
/// Settle each delivery of a manual-ack consumer exactly once: `ack()` when its outcome is safely recorded,
/// `nack(requeue:)`/`reject(requeue:)` otherwise. If the channel or connection closes first, the broker
/// requeues it with `redelivered = true`.
public struct Delivery: Sendable {
    public let body: Data
    public let properties: BasicProperties
    /// Channel-scoped number used to settle this delivery.
    public let deliveryTag: UInt64
    /// True when the broker delivered this message before (to a consumer that did not ack it).
    public let redelivered: Bool
    public let exchange: String
    public let routingKey: String
    /// The consumer it was delivered to; nil for `basic.get`.
    public let consumerTag: String?
    /// For `basic.get`: how many messages were left in the queue.
    public let messageCount: UInt32?
    /// What was wrong with the message's content although it could be read, e.g. headers nested so deep that the
    /// deeper levels were cut; nil for a sound message. A consumer should not trust such a message's headers.
    public let contentProblem: String?

    let core: ConnectionCore
    let channelID: UInt16
    let channelGeneration: UInt64

    init(
        body: Data, properties: BasicProperties, deliveryTag: UInt64, redelivered: Bool, exchange: String,
        routingKey: String, consumerTag: String?, messageCount: UInt32? = nil, contentProblem: String? = nil,
        core: ConnectionCore, channelID: UInt16, channelGeneration: UInt64
    ) {
        self.body = body
        self.properties = properties
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
        self.consumerTag = consumerTag
        self.messageCount = messageCount
        self.contentProblem = contentProblem
        self.core = core
        self.channelID = channelID
        self.channelGeneration = channelGeneration
    }

    /// Acknowledges the delivery (`basic.ack`): the broker forgets the message.
    public func ack() async throws {
        try await settle(.ack(multiple: false))
    }

    /// Hands `basic.ack` to the connection's I/O thread and returns at once, without waiting for it to be written.
    ///
    /// For consumers that ack on a hot path: it saves a thread wake-up per message. If the connection fails before
    /// the ack is written, the broker redelivers the message (flagged `redelivered`), exactly as if the consumer had
    /// died just before acking, so nothing is lost; the failure is only logged.
    public func sendAck() {
        let (channel, generation, tag, core) = (channelID, channelGeneration, deliveryTag, core)
        let notSent: @Sendable (Error) -> Void = { error in
            // The application closing its own connection drops acks still queued, as it means to: not a warning.
            let level: Logger.Level = (error as? AMQPError)?.kind == .closed ? .debug : .warning
            core.logger.log(level: level, "basic.ack of delivery \(tag) not sent: \(error); the broker will redeliver it")
        }
        core.submit(
            IOOperation(
                run: { io in
                    do {
                        try io.settle(channel: channel, generation: generation, deliveryTag: tag, .ack(multiple: false))
                    } catch {
                        notSent(error)
                    }
                },
                fail: { notSent($0) }))
    }

    /// Negatively acknowledges (`basic.nack`): requeued, or dead-lettered/dropped when `requeue` is false.
    public func nack(requeue: Bool) async throws {
        try await settle(.nack(multiple: false, requeue: requeue))
    }

    /// Rejects (`basic.reject`): requeued, or dead-lettered/dropped when `requeue` is false.
    public func reject(requeue: Bool) async throws {
        try await settle(.reject(requeue: requeue))
    }

    private func settle(_ settlement: Settlement) async throws {
        let (channel, generation, tag) = (channelID, channelGeneration, deliveryTag)
        try await core.perform(settlement.methodName) {
            try $0.settle(channel: channel, generation: generation, deliveryTag: tag, settlement)
        }
    }
}

/// What `queue.declare` reports: the queue's name (server-named queues get theirs here) and its counts.
public struct QueueState: Sendable, Hashable {
    public let name: String
    /// Messages ready for delivery (not counting unacked ones).
    public let messageCount: UInt32
    public let consumerCount: UInt32
}

/// An exchange type: the four RabbitMQ has built in, or a plugin's (`"x-delayed-message"`, `"x-consistent-hash"`).
public struct ExchangeType: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }

    public static let direct = ExchangeType(rawValue: "direct")
    public static let topic = ExchangeType(rawValue: "topic")
    public static let fanout = ExchangeType(rawValue: "fanout")
    public static let headers = ExchangeType(rawValue: "headers")

    public var description: String { rawValue }
}

import AMQP
import FoundationEssentials

/// The custody queue of one worker process: where it holds copies of its long tasks (see `TaskCustody`).
///
/// A durable quorum queue, bound to the headers exchange `amqp-tasks.custody` by the queue's own name. A copy is
/// published there with its task queue as routing key; the worker holds it unacknowledged (an unacknowledged message
/// never expires). When the worker dies, the broker makes the copy ready again; it is past its `x-message-ttl`
/// already, so it is dead-lettered at once (at least once) through the default exchange by that routing key: back
/// to its task queue, for another worker. One queue serves all the worker's task queues.
struct CustodyQueue: Sendable {
    /// The headers exchange every worker's custody queue is bound to.
    static let exchange = "amqp-tasks.custody"
    /// The header naming the custody queue a copy goes to (the binding matches it). Not `x-…`: a headers exchange
    /// ignores those when it matches, so a binding on one would take every copy of every worker.
    static let queueHeader = "amqp-tasks-custody-queue"
    /// The header that tells this copy from every other, so the worker knows when it holds it.
    static let copyHeader = "amqp-tasks-custody-copy"
    /// How long a ready copy waits before it goes back to its task queue: a copy the worker did not come to hold
    /// (it died in between) is back this soon.
    static let messageTTL: Duration = .seconds(10)

    /// `amqp-tasks.custody.<hostname>.<instance>`: unique per worker (`instance` is random), so two processes that
    /// share a node name never take each other's copies; the same across the worker's reconnections.
    let name: String
    /// How long the queue outlives its worker (`x-expires`): far longer than any copy needs to dead-letter.
    let expires: Duration

    init(hostname: String, instance: String = Self.newInstance(), consumerTimeout: Duration) {
        let host = String(hostname.unicodeScalars.filter { $0.isASCII && $0 != "\0" }.map(Character.init).prefix(150))
        name = "amqp-tasks.custody.\(host).\(instance)"
        expires = max(.seconds(3600), consumerTimeout * 4)
    }

    /// A random instance name for a new worker.
    static func newInstance() -> String { UUID().shortLowercasedString }

    var arguments: FieldTable {
        [
            "x-queue-type": "quorum",
            "x-message-ttl": .int64(Int64(Self.messageTTL.secondsValue * 1000)),
            "x-dead-letter-exchange": "",
            "x-dead-letter-strategy": "at-least-once",
            // At-least-once dead-lettering requires it.
            "x-overflow": "reject-publish",
            "x-expires": .int64(Int64(expires.secondsValue * 1000)),
        ]
    }

    /// The binding to `exchange`: the copies whose `queueHeader` names this queue, and no others.
    var bindingArguments: FieldTable { ["x-match": "all", Self.queueHeader: .string(name)] }

    /// Declares the exchange, the queue and its binding.
    func declare(on channel: Channel) async throws {
        try await channel.declareExchange(Self.exchange, type: .headers, durable: true)
        try await channel.declareQueue(name, durable: true, arguments: arguments)
        try await channel.bindQueue(name, to: Self.exchange, arguments: bindingArguments)
    }

    /// The copy of `received` (from `queue`) that goes to this custody queue, marked with `token`.
    func copy(of received: ReceivedMessage, queue: String, token: String) -> OutgoingMessage {
        var properties = received.properties
        // The copy is the worker's own publish: it cannot carry the producer's validated user_id (406).
        properties.userId = nil
        properties.deliveryMode = 2
        var headers = properties.headers ?? [:]
        headers[Self.queueHeader] = .string(name)
        headers[Self.copyHeader] = .string(token)
        properties.headers = headers
        return OutgoingMessage(
            body: received.body, exchange: Self.exchange, routingKey: queue, properties: properties, mandatory: true)
    }
}

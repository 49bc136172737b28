import AMQP
import FoundationEssentials

/// Where a worker puts messages it cannot run: the durable exchange and queue `<queue>.dead` (fanout).
///
/// The worker publishes a copy with the reason in headers, waits for the confirm, and only then acks the
/// original: the message is never lost and never loops. (A plain `basic.reject` to a DLX could not say why, and
/// would need the task queue declared with `x-dead-letter-exchange`, which Celery's queues are not.)
public enum DeadLetters {
    /// The dead-letter exchange and queue name for `queue`.
    public static func name(for queue: String) -> String { "\(queue).dead" }

    /// The longest queue name (in UTF-8 bytes) whose dead-letter queue still fits an AMQP name (255 bytes): 250.
    public static let longestQueueName = 255 - name(for: "").utf8.count

    /// Headers added to a dead-lettered message.
    public enum Header {
        public static let reason = "x-amqp-tasks-reason"
        public static let error = "x-amqp-tasks-error"
        public static let queue = "x-amqp-tasks-queue"
        public static let worker = "x-amqp-tasks-worker"
        public static let time = "x-amqp-tasks-dead-lettered-at"
        /// The producer's validated `user_id`, which the copy cannot carry as its own property.
        public static let userId = "x-amqp-tasks-user-id"
    }

    /// Declares `<queue>.dead` (exchange and queue, durable) and binds them. The queue of a quorum task queue is a
    /// quorum queue too, so dead letters stay reachable, as the tasks do, while a minority of nodes is down. A
    /// dead-letter queue that exists already is used as it is, whatever its type.
    public static func declare(for queue: String, quorum: Bool = false, on channel: Channel) async throws {
        let name = name(for: queue)
        try await channel.declareExchange(name, type: .fanout, durable: true)
        try await Topology.declareQueueIfMissing(
            name, arguments: quorum ? ["x-queue-type": "quorum"] : [:], on: channel.connection)
        try await channel.bindQueue(name, to: name)
    }

    /// The copy of `received` without the dead-letter headers, for when they would not fit in one frame with the
    /// message's own headers (`AMQPError.invalidArgument` from `basic.publish`): the message's properties as they
    /// came fit, since it was delivered on a connection with this frame size. Only what the broker would refuse
    /// goes: the expiration (a dead letter stays) and the `user_id` (not the worker's).
    static func bareMessage(for received: ReceivedMessage, queue: String) -> OutgoingMessage {
        var properties = received.properties
        properties.expiration = nil
        properties.userId = nil
        return OutgoingMessage(
            body: received.body, exchange: name(for: queue),
            routingKey: NativeDelayedDelivery.strippingDelayPrefix(received.routingKey), properties: properties,
            mandatory: true)
    }

    /// The copy of `received` to publish to the dead-letter exchange.
    static func message(
        for received: ReceivedMessage, queue: String, reason: String, error: String, worker: String
    ) -> OutgoingMessage {
        var properties = received.properties
        var headers = properties.headers ?? [:]
        headers[Header.reason] = .string(reason)
        headers[Header.error] = .string(error)
        headers[Header.queue] = .string(queue)
        headers[Header.worker] = .string(worker)
        headers[Header.time] = .timestamp(Date())
        properties.headers = headers
        properties.deliveryMode = BasicProperties.DeliveryMode.persistent
        properties.expiration = nil
        // RabbitMQ refuses a user_id that is not the publishing connection's user (406, channel closed): the
        // producer's goes into a header instead.
        if let userId = properties.userId {
            headers[Header.userId] = .string(userId)
            properties.headers = headers
            properties.userId = nil
        }
        return OutgoingMessage(
            body: received.body, exchange: name(for: queue),
            routingKey: NativeDelayedDelivery.strippingDelayPrefix(received.routingKey), properties: properties,
            mandatory: true)
    }
}

import AMQP
import FoundationEssentials

/// A message as the worker took it from a queue: what the broker delivered, without the means to settle it (the
/// last stage, `TaskProcessor`, acks or requeues the delivery itself).
public struct ReceivedMessage: Sendable {
    public var body: Data
    public var properties: BasicProperties
    /// True when the broker delivered it before to a consumer that did not finish it.
    public var redelivered: Bool
    /// The routing key it was published with.
    public var routingKey: String
    /// The queue it came from.
    public var queue: String
    /// What the AMQP layer found wrong with its content although it could be read (see `Delivery.contentProblem`).
    public var contentProblem: String?

    public init(
        body: Data, properties: BasicProperties, queue: String, routingKey: String? = nil, redelivered: Bool = false,
        contentProblem: String? = nil
    ) {
        self.body = body
        self.properties = properties
        self.queue = queue
        self.routingKey = routingKey ?? queue
        self.redelivered = redelivered
        self.contentProblem = contentProblem
    }

    init(_ delivery: Delivery, queue: String) {
        self.init(
            body: delivery.body, properties: delivery.properties, queue: queue, routingKey: delivery.routingKey,
            redelivered: delivery.redelivered, contentProblem: delivery.contentProblem)
    }

    /// The task id the headers claim, if any (the message may not decode).
    var claimedTaskId: String? { properties.headers?["id"]?.stringValue ?? properties.correlationId }
}

import AMQP
import FoundationEssentials

/// `[[queues]]`, with its bindings.
public struct QueueDefinition: Sendable, Hashable {
    /// The queue type: `classic` or `quorum` (replicated).
    public enum Kind: String, Sendable, Hashable {
        case classic, quorum
    }

    public var name: String
    public var durable = true
    public var kind: Kind = .classic
    public var deadLetterExchange: String?
    public var maxPriority: Int?
    /// Quorum queues: deliveries before a message is dead-lettered as poison (`x-delivery-limit`).
    public var deliveryLimit: Int?
    /// Milliseconds a message may wait in the queue (`x-message-ttl`), as RabbitMQ counts it.
    public var messageTTL: Int?
    /// This queue's consumer timeout (`x-consumer-timeout`, RabbitMQ 3.12 and later; older brokers keep the argument
    /// and ignore it). A worker takes a task of this queue into custody after half of it when it is shorter than
    /// `[worker] consumer_timeout` (see `WorkerConfiguration.custodyTimeout(for:)`).
    public var consumerTimeout: Duration?
    /// Extra `x-` arguments, as written.
    public var arguments: FieldTable = [:]
    public var bindings: [Binding] = []

    /// A binding of this queue to an exchange.
    public struct Binding: Sendable, Hashable {
        public var exchange: String
        public var routingKey: String

        public init(exchange: String, routingKey: String) {
            self.exchange = exchange
            self.routingKey = routingKey
        }
    }

    /// A queue as `[[queues]]` describes it; every key of the section has a parameter.
    public init(
        name: String, kind: Kind = .classic, durable: Bool = true, deadLetterExchange: String? = nil,
        maxPriority: Int? = nil, deliveryLimit: Int? = nil, messageTTL: Int? = nil, arguments: FieldTable = [:],
        bindings: [Binding] = [], consumerTimeout: Duration? = nil
    ) {
        self.name = name
        self.kind = kind
        self.durable = durable
        self.deadLetterExchange = deadLetterExchange
        self.maxPriority = maxPriority
        self.deliveryLimit = deliveryLimit
        self.messageTTL = messageTTL
        self.arguments = arguments
        self.bindings = bindings
        self.consumerTimeout = consumerTimeout
    }

    /// The arguments `queue.declare` sends: the typed settings as `x-` arguments, then the extra ones.
    public var declareArguments: FieldTable {
        var table = FieldTable()
        if kind == .quorum { table["x-queue-type"] = "quorum" }
        if let deadLetterExchange {
            table["x-dead-letter-exchange"] = .string(deadLetterExchange)
        } else if deliveryLimit != nil {
            // Past its delivery limit RabbitMQ drops a message unless the queue has a dead-letter exchange:
            // send poison messages to the worker's own `<queue>.dead`, where `amqp-task dead` can replay them.
            table["x-dead-letter-exchange"] = .string(DeadLetters.name(for: name))
        }
        if let maxPriority { table["x-max-priority"] = .int32(Int32(clamping: maxPriority)) }
        if let deliveryLimit { table["x-delivery-limit"] = .int32(Int32(clamping: deliveryLimit)) }
        if let messageTTL { table["x-message-ttl"] = .int64(Int64(messageTTL)) }
        if let consumerTimeout {
            table["x-consumer-timeout"] = .int64(Int64((consumerTimeout.secondsValue * 1000).rounded()))
        }
        for (key, value) in arguments { table[key] = value }
        return table
    }
}

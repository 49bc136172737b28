import AMQP
import FoundationEssentials

/// The bindings that let a task queue receive what `celery_delayed_delivery` hands on (see `NativeDelayedDelivery`).
///
/// - As a Celery worker binds (its `DelayedDelivery` bootstep), for each binding of the queue to a topic or fanout
///   exchange `E` with key `K`: `E` to `celery_delayed_delivery` with `#.K`, and the queue to `E` with `#.K`
///   (`K` itself when it starts with `#`). So a Celery client's delayed task reaches the queue, and a Celery worker
///   declaring the same bindings changes nothing.
/// - Further than Celery, which supports only topic and fanout exchanges: the queue itself to
///   `celery_delayed_delivery` with `*.*.….*.N` (28 `*` words, then `N`) for its own name `N` (the default exchange,
///   and where a worker parks or retries a task), and for the key `K` of each binding to a direct exchange. These
///   patterns match exactly 28 digits and then exactly the key, so a key that ends with another queue's name
///   (`b.a` and `a`) does not leak into it, as Celery's `#.a` would.
public struct DelayedDeliveryBindings: Sendable, Hashable {
    /// One binding to declare.
    public enum Binding: Sendable, Hashable {
        /// The queue bound to `celery_delayed_delivery` with `pattern`.
        case queueToDelivery(pattern: String)
        /// Exchange `exchange` bound to `celery_delayed_delivery` with `pattern` (Celery's).
        case exchangeToDelivery(exchange: String, pattern: String)
        /// The queue bound to `exchange` with `pattern` (Celery's).
        case queueToExchange(exchange: String, pattern: String)
    }

    /// The queue these bindings lead to.
    public var queue: String
    /// What to declare, in order.
    public var bindings: [Binding]
    /// Bindings of the queue that get no delayed-delivery binding: their key matches every routing key (`#`,
    /// `#.#`…), so Celery's pattern would bring every delayed task of the vhost into the queue.
    public var skipped: [QueueDefinition.Binding] = []

    /// The bindings for `queue`, given its definition (nil: a queue known only by name, as Celery declares it) and
    /// the types of the exchanges it is bound to (an exchange of unknown type is treated as Celery treats a topic
    /// one; the built-in `amq.*` exchanges are known by name).
    public init(queue: String, definition: QueueDefinition?, exchangeTypes: [String: ExchangeType]) {
        self.queue = queue
        var bindings: [Binding] = [.queueToDelivery(pattern: Self.exactPattern(for: queue))]
        var skipped: [QueueDefinition.Binding] = []
        for binding in definition?.bindings ?? [] where !binding.exchange.isEmpty {
            let type = exchangeTypes[binding.exchange] ?? Self.builtInTypes[binding.exchange]
            if type == .direct {
                bindings.append(.queueToDelivery(pattern: Self.exactPattern(for: binding.routingKey)))
            } else if type == .headers {
                continue  // routed by headers, not keys: neither Celery nor we can route a delayed message there
            } else {
                let pattern = Self.celeryPattern(for: binding.routingKey)
                guard !Self.matchesEveryKey(pattern) else {
                    // Celery would bind `#` here, and every delayed task of the vhost would reach this queue too.
                    skipped.append(binding)
                    continue
                }
                bindings.append(.exchangeToDelivery(exchange: binding.exchange, pattern: pattern))
                bindings.append(.queueToExchange(exchange: binding.exchange, pattern: pattern))
            }
        }
        var seen = Set<Binding>()
        self.bindings = bindings.filter { seen.insert($0).inserted }
        self.skipped = skipped
    }

    /// The bindings for `queue` as a configuration describes it.
    public init(queue: String, configuration: TasksConfiguration?) {
        self.init(
            queue: queue, definition: configuration?.queue(named: queue),
            exchangeTypes: Self.exchangeTypes(of: configuration?.exchanges ?? []))
    }

    /// `[name: type]` of `exchanges`.
    public static func exchangeTypes(of exchanges: [ExchangeDefinition]) -> [String: ExchangeType] {
        Dictionary(exchanges.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first })
    }

    /// True when a topic pattern matches every key: made of `#` and `*` words only, with at least one `#`.
    static func matchesEveryKey(_ pattern: String) -> Bool {
        let words = pattern.split(separator: ".", omittingEmptySubsequences: false)
        return words.contains("#") && words.allSatisfy { $0 == "#" || $0 == "*" }
    }

    /// 28 `*` words, then `key`: exactly a delayed message's digits followed by exactly `key`.
    public static func exactPattern(for key: String) -> String {
        String(repeating: "*.", count: NativeDelayedDelivery.levelCount) + key
    }

    /// Celery's pattern for binding key `key`: `#.key`, or `key` when it starts with `#`.
    public static func celeryPattern(for key: String) -> String {
        key.hasPrefix("#") ? key : "#.\(key)"
    }

    static let builtInTypes: [String: ExchangeType] = [
        "amq.direct": .direct, "amq.topic": .topic, "amq.fanout": .fanout, "amq.headers": .headers,
        "amq.match": .headers,
    ]

    /// Declares the bindings on `channel` (the exchanges they name must exist; `celery_delayed_delivery` too).
    public func declare(on channel: Channel) async throws {
        let delivery = NativeDelayedDelivery.deliveryExchange
        for binding in bindings {
            switch binding {
            case .queueToDelivery(let pattern):
                try await channel.bindQueue(queue, to: delivery, routingKey: pattern)
            case .exchangeToDelivery(let exchange, let pattern):
                try await channel.bindExchange(exchange, to: delivery, routingKey: pattern)
            case .queueToExchange(let exchange, let pattern):
                try await channel.bindQueue(queue, to: exchange, routingKey: pattern)
            }
        }
    }
}

import AMQP
import Foundation

/// Everything `amqp-tasks.toml` says: broker, topology, routing, worker and per-task settings.
///
/// Read it with `TasksConfiguration.load(path:)`; every problem is reported with file, line and key. The client,
/// `amqp-worker` and `amqp-task` all read the same file.
public struct TasksConfiguration: Sendable {
    /// The file this came from (empty for the built-in defaults).
    public var file: String = ""
    public var broker = BrokerSettings()
    public var exchanges: [ExchangeDefinition] = []
    public var queues: [QueueDefinition] = []
    /// In file order; the first pattern that matches a task name wins.
    public var routes: [Route] = []
    public var worker = WorkerSettings()
    public var tasks: [String: TaskSettings] = [:]

    public init() {}

    /// The queue definition named `name`, if the file declares it.
    public func queue(named name: String) -> QueueDefinition? { queues.first { $0.name == name } }
}

/// `[broker]`: where the broker is and how to talk to it.
public struct BrokerSettings: Sendable, Hashable {
    /// `AMQP_URL` in the environment overrides it, so passwords can stay out of the file. Several URLs (the nodes of
    /// a cluster) are separated by commas; clients and workers use the first that answers.
    public var url: String = "amqp://guest:guest@127.0.0.1:5672/%2f"
    /// Seconds; nil keeps the URL's (or RabbitMQ's default 60).
    public var heartbeat: Int?
    /// Seconds.
    public var connectionTimeout: Double?
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?

    public init() {}

    /// The URL(s) with the file's heartbeat, timeout and TLS settings added as query options, comma-separated.
    public var connectionURL: String {
        url.split(separator: ",").map { withOptions(String($0).trimmingCharacters(in: .whitespaces)) }
            .joined(separator: ",")
    }

    private func withOptions(_ url: String) -> String {
        var options: [String] = []
        if let heartbeat { options.append("heartbeat=\(heartbeat)") }
        if let connectionTimeout { options.append("connection_timeout=\(Int(connectionTimeout * 1000))") }
        if let caFile { options.append("cacertfile=\(caFile)") }
        if let certFile { options.append("certfile=\(certFile)") }
        if let keyFile { options.append("keyfile=\(keyFile)") }
        guard !options.isEmpty else { return url }
        return url + (url.contains("?") ? "&" : "?") + options.joined(separator: "&")
    }

    /// The URL(s) with passwords masked, for output.
    public var maskedURL: String {
        // The whole text at once: a comma may also be part of a password.
        ConnectionConfiguration.masked(url)
    }
}

/// `[[exchanges]]`.
public struct ExchangeDefinition: Sendable, Hashable {
    public var name: String
    public var type: ExchangeType = .direct
    public var durable = true
    public var autoDelete = false
    public var arguments: FieldTable = [:]

    public init(
        name: String, type: ExchangeType = .direct, durable: Bool = true, autoDelete: Bool = false,
        arguments: FieldTable = [:]
    ) {
        self.name = name
        self.type = type
        self.durable = durable
        self.autoDelete = autoDelete
        self.arguments = arguments
    }
}

/// `[[queues]]`, with its bindings.
public struct QueueDefinition: Sendable, Hashable {
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
    public var messageTTL: Int?
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

    public init(name: String, kind: Kind = .classic, durable: Bool = true) {
        self.name = name
        self.kind = kind
        self.durable = durable
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
        for (key, value) in arguments { table[key] = value }
        return table
    }
}

/// `[routes]`: a task-name pattern and where matching tasks go.
public struct Route: Sendable, Hashable {
    /// `*` matches within one dot-separated part, `**` across parts: `mail.*` matches `mail.send`,
    /// `reports.**` matches `reports.monthly.pdf`.
    public var pattern: String
    public var target: RouteTarget

    public func matches(_ taskName: String) -> Bool { Glob.matches(pattern, taskName) }
}

/// Where a route sends tasks.
public enum RouteTarget: Sendable, Hashable {
    /// Through the default exchange to this queue.
    case queue(String)
    case exchange(String, routingKey: String)

    /// The exchange and routing key to publish to.
    public var exchangeAndRoutingKey: (exchange: String, routingKey: String) {
        switch self {
        case .queue(let queue): ("", queue)
        case .exchange(let exchange, let routingKey): (exchange, routingKey)
        }
    }
}

/// `[worker]`.
public struct WorkerSettings: Sendable, Hashable {
    public var queues: [String] = []
    public var concurrency = 1
    /// Unacknowledged tasks per consumer. Keep 1 unless tasks are tiny: above 1, tasks wait inside a busy
    /// consumer instead of going to an idle worker, and a crash sends all of them back for redelivery.
    public var prefetch = 1
    public var gracePeriod: Double = 30
    public var hostname: String?
    public var sendStarted = false
    public var maxRetries: Int?
    /// Final results as persistent messages (Celery's `result_persistent`); see `WorkerConfiguration.persistentResults`.
    public var resultPersistent = true
    /// See `WorkerConfiguration.maxMessageSize`.
    public var maxMessageSize = WorkerConfiguration.defaultMaxMessageSize
    /// See `WorkerConfiguration.maxResultSize`.
    public var maxResultSize = WorkerConfiguration.defaultMaxResultSize
    /// See `WorkerConfiguration.recordAttempts`.
    public var recordAttempts = WorkerConfiguration.defaultRecordAttempts
    /// `remote_control`: "off", "read-only" (the default) or "all"; see `RemoteControlAccess`.
    public var remoteControl: RemoteControlAccess = .readOnly
}

/// `[tasks."NAME"]`: settings of one task.
public struct TaskSettings: Sendable, Hashable {
    /// Run the task as this process (argument vector; no shell): an exec handler.
    public var command: [String]?
    public var maxRetries: Int?
    /// Exponential backoff base in seconds (true = 1 s); false = fixed delays.
    public var retryBackoff: Double?
    public var timeLimit: Double?
    public var softTimeLimit: Double?
    public var ignoreResult: Bool?
    /// Send this task to this queue (overrides `[routes]`).
    public var queue: String?
    /// Exec handler: variables set for the command (`env = { NAME = "value" }`), over its minimal environment.
    public var env: [String: String] = [:]
    /// Exec handler: the worker's variables the command also gets (`inherit_env = ["NAME", "PREFIX*"]`); without
    /// them it sees only PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ and TMPDIR (see `ExecEnvironment`).
    public var inheritEnv: [String] = []
    /// Exec handler: bytes of stdout kept as the result (default 1 MiB); more fails the task with `ExecOutputTooLarge`.
    public var stdoutLimit: Int?
    /// Exec handler: bytes of stderr kept, the last ones, as a failure's message (default 64 KiB).
    public var stderrLimit: Int?
    /// Exec handler: seconds between SIGTERM and SIGKILL when the worker stops the command (default 5).
    public var killTimeout: Double?
}

/// Glob patterns over dotted task names.
enum Glob {
    static func matches(_ pattern: String, _ name: String) -> Bool {
        var regex = "^"
        var index = pattern.startIndex
        while index < pattern.endIndex {
            let ch = pattern[index]
            if ch == "*" {
                let next = pattern.index(after: index)
                if next < pattern.endIndex, pattern[next] == "*" {
                    regex += ".*"
                    index = pattern.index(after: next)
                    continue
                }
                regex += "[^.]*"
            } else {
                regex += NSRegularExpression.escapedPattern(for: String(ch))
            }
            index = pattern.index(after: index)
        }
        regex += "$"
        return name.range(of: regex, options: .regularExpression) != nil
    }
}

import AMQP
import FoundationEssentials
import Glibc

/// Settings of a `Worker`, with defaults at each property: the one type for them, whether they come from Swift, from
/// the configuration file's `[worker]` (`TasksConfiguration.worker` is one) or from `amqp-worker`'s options.
///
/// `[worker]` sets `queues`, `concurrency`, `maxConcurrency` (`max_concurrency`), `autoscale`, `autoscaleKeepalive`
/// (`autoscale_keepalive`), `prefetch`, `gracePeriod` (`grace_period`), `hostname`, `sendStarted`,
/// `retryPolicy.maxRetries` (`max_retries`), `persistentResults` (`result_persistent`), `maxMessageSize`,
/// `maxResultSize`, `recordAttempts`, `maxAbandonedHandlers`, `remoteControl`, `consumerTimeout`, `metricsEndpoint` (`metrics_port`, `metrics_host`) and `logFormat` (`log_format`). `broker`, `tasks` and `topology` come from the file's other
/// sections (`init(configuration:)`); `sendEvents`, `eventHeartbeat` and `maxReconnectDelay` only from Swift or the
/// command line.
public struct WorkerConfiguration: Sendable, Equatable {
    /// The brokers to connect to, as typed connection configurations (from `[broker]`; see `BrokerSettings`).
    public var broker = BrokerSettings()
    /// Queues to consume. Each is declared (durable, classic, no arguments, as Celery declares `celery`) unless it
    /// exists already, in which case it is used as it is.
    public var queues: [String] = ["celery"]
    /// Consumers per queue; each holds at most `prefetch` tasks. `pool_grow`, `pool_shrink` and autoscale change
    /// it at run time, within 1 to `maxConcurrency`.
    public var concurrency: Int = 1
    /// The most consumers per queue remote control (`pool_grow`, `autoscale`) may ask for (`[worker]
    /// max_concurrency`); each is a channel of its own. 64 by default.
    public var maxConcurrency: Int = Self.defaultMaxConcurrency
    public static let defaultMaxConcurrency = 64
    /// Celery's `--autoscale MAX,MIN` (`[worker] autoscale = "MAX,MIN"`): the worker starts with MIN consumers per
    /// queue and grows to MAX under a backlog (`Autoscaler`); nil (the default) keeps `concurrency`.
    public var autoscale: AutoscaleRange?
    /// How long autoscale keeps grown consumers before it shrinks back (Celery's `AUTOSCALE_KEEPALIVE`, 30 s;
    /// `[worker] autoscale_keepalive`).
    public var autoscaleKeepalive: Duration = .seconds(30)
    /// How often autoscale reads the queues' backlog (1 s, as Celery's autoscaler looks).
    public var autoscaleInterval: Duration = .seconds(1)
    /// Unacknowledged tasks per consumer. 1 (the default) means a consumer holds exactly the task it runs, so a
    /// long task never delays others queued behind it and a crash loses at most that one task (to redelivery).
    /// Above 1, tasks wait in the consumer while another runs.
    public var prefetch: UInt16 = 1
    /// The worker's node name (Celery's `-n`). The default, `amqp-worker-<pid>@<host>`, is unique per process, so
    /// remote control and Flower tell workers on one host apart.
    public var hostname: String = Self.defaultHostname
    public static var defaultHostname: String { "amqp-worker-\(getpid())@\(ProcessInfo.processInfo.hostName)" }
    /// Retry policy for handlers that throw `TaskRetry` without their own countdown.
    public var retryPolicy = RetryPolicy()
    /// Publish final results (SUCCESS, FAILURE, REVOKED) as persistent messages (Celery's `result_persistent`). On
    /// (the default), a result the broker confirmed survives a broker restart, so "acknowledged only when the outcome
    /// is safely recorded" holds across one; off, results are transient as Celery's rpc backend sends them by
    /// default: faster (no disk sync per result), but a broker restart loses results not yet consumed.
    public var persistentResults = true
    /// Task messages with a larger body are not decoded: they go to `<queue>.dead` with reason
    /// `message-too-large`. 32 MiB by default; RabbitMQ's own `max_message_size` (128 MiB by default in 3.10,
    /// 16 MiB from 4.0) caps what reaches the queue at all.
    public var maxMessageSize = Self.defaultMaxMessageSize
    public static let defaultMaxMessageSize = 32 << 20
    /// A result whose encoded body is larger is replaced by a FAILURE (`ResultTooLarge`) saying how large it was,
    /// so an outsized result never makes the broker close the channel. 16 MiB by default.
    public var maxResultSize = Self.defaultMaxResultSize
    public static let defaultMaxResultSize = 16 << 20
    /// How many times one worker tries to record a task's outcome (result, retry, dead letter, follow-up tasks)
    /// before it gives up on it: the task then goes to `<queue>.dead` with reason `outcome-not-recorded`, and the
    /// caller gets a FAILURE where a result can still be delivered. Never a loop.
    public var recordAttempts = Self.defaultRecordAttempts
    public static let defaultRecordAttempts = 3
    /// How many abandoned handlers — stopped waiting for at their hard time limit or by `revoke --terminate`, yet
    /// still running a second later because they ignore cancellation — the worker tolerates. One more (or Swift's
    /// cooperative pool running nothing for 10 s while any runs) and the worker stops taking tasks, stops as in a
    /// warm shutdown and `run()` throws `WorkerShutdown.restartNeeded`, so a supervisor starts a fresh process:
    /// Swift cannot kill a task, and only a new process gets its threads back. See "Time limits" in the README.
    public var maxAbandonedHandlers = Self.defaultMaxAbandonedHandlers
    public static let defaultMaxAbandonedHandlers = 2
    /// Send a STARTED state before running each task (Celery's `task_track_started`).
    public var sendStarted = false
    /// Publish Celery events to `celeryev` (Celery's `-E`): worker online/heartbeat/offline and task events. Without
    /// it, a worker whose `remoteControl` is not `.off` turns them on when asked, with task data only under `.full` (`enable_events`; see `EventToggles`).
    public var sendEvents = false
    /// Time between `worker-heartbeat` events (Celery's 2 s).
    public var eventHeartbeat: Duration = .seconds(2)
    /// How long a warm shutdown lets running tasks finish before they are interrupted and requeued.
    public var gracePeriod: Duration = .seconds(30)
    /// Longest pause between reconnection attempts (backoff starts at 1 s and doubles, half of it random).
    public var maxReconnectDelay: Duration = .seconds(30)
    /// Per-task settings: retries, backoff, time limit, ignore_result (from `[tasks."NAME"]`).
    public var tasks: [String: TaskSettings] = [:]
    /// Exchanges, queues and bindings to declare at start (from the configuration file).
    public var topology: TasksConfiguration? {
        get { topologyBox?.configuration }
        set { topologyBox = newValue.map(TopologyBox.init) }
    }
    /// The broker's `consumer_timeout` (RabbitMQ's default is 30 minutes), as `[worker] consumer_timeout` tells it;
    /// nil (`"off"`) turns custody off. A task that runs for half of it goes into custody (see `TaskCustody`), so
    /// the broker never closes its channel and never redelivers it to another worker while this one lives.
    public var consumerTimeout: Duration? = Self.defaultConsumerTimeout
    public static let defaultConsumerTimeout: Duration = .seconds(30 * 60)
    /// Which remote-control commands (`celery inspect`, `celery control`, Flower) the worker obeys: by default
    /// `standard` (inspect, events, revoke and rate limits, not what stops or reshapes it); see `RemoteControlAccess`.
    public var remoteControl: RemoteControlAccess = .standard
    /// Where `amqp-worker` serves `/metrics` and `/healthz` (`[worker] metrics_port`, `metrics_host`); nil = off.
    /// The `Worker` itself does not serve HTTP: it reports through swift-metrics and `Worker.status`.
    public var metricsEndpoint: MetricsEndpoint?
    /// The stream of lasting revokes (`RevokeLog`) this worker reads at start and follows, and where it records
    /// the revokes it obeys from Celery's tools; nil: revokes last only while the worker runs, as in a Celery
    /// worker without `--statedb`.
    public var revokeLog: String? = RevokeLog.queue
    /// How `amqp-worker` writes its log (`[worker] log_format`): swift-log's text lines or one JSON object per line.
    /// The `Worker` itself logs through the `Logger` it is given.
    public var logFormat: LogFormat = .text

    /// Held by reference: a `TasksConfiguration` holds a `WorkerConfiguration`, which cannot hold one inline.
    private var topologyBox: TopologyBox?

    /// Every setting, by name; defaults for those not given.
    public init(
        broker: BrokerSettings = BrokerSettings(), queues: [String] = ["celery"], concurrency: Int = 1,
        prefetch: UInt16 = 1, hostname: String = Self.defaultHostname, retryPolicy: RetryPolicy = RetryPolicy(),
        persistentResults: Bool = true, maxMessageSize: Int = Self.defaultMaxMessageSize,
        maxResultSize: Int = Self.defaultMaxResultSize, recordAttempts: Int = Self.defaultRecordAttempts,
        sendStarted: Bool = false, sendEvents: Bool = false, eventHeartbeat: Duration = .seconds(2),
        gracePeriod: Duration = .seconds(30), maxReconnectDelay: Duration = .seconds(30),
        tasks: [String: TaskSettings] = [:], topology: TasksConfiguration? = nil,
        remoteControl: RemoteControlAccess = .standard, consumerTimeout: Duration? = Self.defaultConsumerTimeout
    ) {
        self.broker = broker
        self.queues = queues
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.hostname = hostname
        self.retryPolicy = retryPolicy
        self.persistentResults = persistentResults
        self.maxMessageSize = maxMessageSize
        self.maxResultSize = maxResultSize
        self.recordAttempts = recordAttempts
        self.sendStarted = sendStarted
        self.sendEvents = sendEvents
        self.eventHeartbeat = eventHeartbeat
        self.gracePeriod = gracePeriod
        self.maxReconnectDelay = maxReconnectDelay
        self.tasks = tasks
        self.topology = topology
        self.remoteControl = remoteControl
        self.consumerTimeout = consumerTimeout
    }

    /// Defaults, with the broker at `url` (one `amqp://` or `amqps://` URL, or several comma-separated).
    /// Throws `AMQPError` (`.invalidArgument`) naming a bad URL.
    public init(url: String) throws {
        self.init(broker: try BrokerSettings(url: url))
    }

    /// A configuration file's worker: its `[worker]`, with the brokers of `[broker]` and the settings of `[tasks]`;
    /// its topology is declared at start.
    public init(configuration: TasksConfiguration) {
        self = configuration.worker
        broker = configuration.broker
        tasks = configuration.tasks
        topology = configuration
    }

    /// When tasks of `queue` go into custody: the shorter of `consumerTimeout` and the queue's own `consumer_timeout`
    /// (`[[queues]]`, RabbitMQ 3.12+); nil when custody is off.
    func custodyTimeout(for queue: String) -> Duration? {
        guard let consumerTimeout else { return nil }
        guard let queueTimeout = topology?.queue(named: queue)?.consumerTimeout else { return consumerTimeout }
        return min(consumerTimeout, queueTimeout)
    }

    /// The retry policy of one task: the worker's, with the task's `max_retries` and `retry_backoff`.
    func retryPolicy(for task: String) -> RetryPolicy {
        var policy = retryPolicy
        guard let settings = tasks[task] else { return policy }
        if let maxRetries = settings.maxRetries { policy.maxRetries = maxRetries }
        if let backoff = settings.retryBackoff {
            policy.backoff = backoff > .zero
            if backoff > .zero { policy.baseDelay = backoff }
        }
        return policy
    }
}

/// A configuration held by reference, compared by value.
private final class TopologyBox: Sendable, Equatable {
    let configuration: TasksConfiguration

    init(_ configuration: TasksConfiguration) { self.configuration = configuration }

    static func == (lhs: TopologyBox, rhs: TopologyBox) -> Bool { lhs.configuration == rhs.configuration }
}

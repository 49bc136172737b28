import Foundation

/// Settings of a `Worker`, with defaults at each property.
public struct WorkerConfiguration: Sendable {
    /// The broker, as an `amqp://` or `amqps://` URL.
    public var url: String
    /// Queues to consume. Each is declared (durable, classic, no arguments, as Celery declares `celery`) unless it
    /// exists already, in which case it is used as it is.
    public var queues: [String] = ["celery"]
    /// Consumers per queue; each holds at most `prefetch` tasks.
    public var concurrency: Int = 1
    /// Unacknowledged tasks per consumer. 1 (the default) means a consumer holds exactly the task it runs, so a
    /// long task never delays others queued behind it and a crash loses at most that one task (to redelivery).
    /// Above 1, tasks wait in the consumer while another runs.
    public var prefetch: UInt16 = 1
    /// The worker's node name (Celery's `-n`). The default, `amqp-worker-<pid>@<host>`, is unique per process, so
    /// remote control and Flower tell workers on one host apart.
    public var hostname: String = "amqp-worker-\(getpid())@\(ProcessInfo.processInfo.hostName)"
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
    /// Send a STARTED state before running each task (Celery's `task_track_started`).
    public var sendStarted = false
    /// Publish Celery events to `celeryev` (Celery's `-E`): worker online/heartbeat/offline and task events.
    public var sendEvents = false
    /// Seconds between `worker-heartbeat` events (Celery's 2 s).
    public var eventHeartbeat: Double = 2
    /// Seconds a warm shutdown lets running tasks finish before they are interrupted and requeued.
    public var gracePeriod: Double = 30
    /// Longest pause between reconnection attempts, in seconds (backoff starts at 1 s and doubles, half of it random).
    public var maxReconnectDelay: Double = 30
    /// Per-task settings: retries, backoff, time limit, ignore_result (from `[tasks."NAME"]`).
    public var tasks: [String: TaskSettings] = [:]
    /// Exchanges, queues and bindings to declare at start (from the configuration file).
    public var topology: TasksConfiguration?
    /// Which remote-control commands (`celery inspect`, `celery control`, Flower) the worker obeys: by default only
    /// the read-only ones; see `RemoteControlAccess`.
    public var remoteControl: RemoteControlAccess = .readOnly

    public init(url: String) { self.url = url }

    /// The settings of a configuration file's `[broker]`, `[worker]` and `[tasks]`; its topology is declared at start.
    public init(configuration: TasksConfiguration) {
        url = configuration.broker.connectionURL
        let settings = configuration.worker
        queues = settings.queues.isEmpty ? ["celery"] : settings.queues
        concurrency = settings.concurrency
        prefetch = UInt16(clamping: settings.prefetch)
        gracePeriod = settings.gracePeriod
        if let hostname = settings.hostname { self.hostname = hostname }
        sendStarted = settings.sendStarted
        persistentResults = settings.resultPersistent
        maxMessageSize = settings.maxMessageSize
        maxResultSize = settings.maxResultSize
        recordAttempts = settings.recordAttempts
        remoteControl = settings.remoteControl
        if let maxRetries = settings.maxRetries { retryPolicy.maxRetries = maxRetries }
        tasks = configuration.tasks
        topology = configuration
    }

    /// The retry policy of one task: the worker's, with the task's `max_retries` and `retry_backoff`.
    func retryPolicy(for task: String) -> RetryPolicy {
        var policy = retryPolicy
        guard let settings = tasks[task] else { return policy }
        if let maxRetries = settings.maxRetries { policy.maxRetries = maxRetries }
        if let backoff = settings.retryBackoff {
            policy.backoff = backoff > 0
            if backoff > 0 { policy.baseDelay = .clampedSeconds(backoff) }
        }
        return policy
    }
}

import FoundationEssentials
import Logging

/// What a handler (and a middleware) knows about the task it runs.
public struct TaskContext: Sendable {
    /// The task as decoded; the worker fills in the hard and soft time limits and `ignore_result` it applies.
    public internal(set) var message: TaskMessage
    /// True when the broker delivered this task before to a worker that did not finish it (crash, lost
    /// connection): make handlers idempotent, or check here.
    public let redelivered: Bool
    /// The worker's node name, e.g. `amqp-worker@host`.
    public let hostname: String
    /// The queue the task came from.
    public let queue: String
    /// The worker's logger with `task_id` and `task` in its metadata: what a handler logs is found by task.
    public let logger: Logger
    /// When the message says it was published: its AMQP `timestamp` property (whole seconds), if its publisher set
    /// one (Celery's clients and `TaskClient` do not). The worker's metrics time the wait from it to the start.
    public internal(set) var publishedAt: Date?
    /// What the worker tells the running handler: the soft or hard limit passed, or it was abandoned.
    var signals = HandlerSignals()
    /// Where `updateState` and `reportProgress` send to; nil when the task has no caller to tell.
    var progress: ProgressReporter?
    /// The handler's span context, for the tasks the worker sends on its behalf (see `TaskTracingMiddleware`).
    let traceSlot = TaskTraceSlot()

    /// A context as the worker makes it; tests of handlers and middleware can make their own.
    public init(
        message: TaskMessage, redelivered: Bool = false, hostname: String = "test@localhost", queue: String = "celery",
        logger: Logger = Logger(label: "amqp-tasks.task")
    ) {
        self.message = message
        self.redelivered = redelivered
        self.hostname = hostname
        self.queue = queue
        var logger = logger
        logger.handler = TaskLogHandler(base: logger.handler, taskId: message.id, taskName: message.name)
        self.logger = logger
    }

    public var taskId: String { message.id }
    public var taskName: String { message.name }
    public var retries: Int { message.retries }

    /// True once the task's soft time limit has passed (`[tasks."NAME"] soft_time_limit`, or the soft value of
    /// Celery's `timelimit`). At that moment the worker cancels the handler's task: an `await` that honours
    /// cancellation throws `CancellationError`. Catch it, check this, clean up and return a result of your own
    /// (SUCCESS); an error that escapes fails the task with `SoftTimeLimitExceeded`, as in Celery. The hard limit,
    /// if any, still applies.
    public var softTimeLimitExceeded: Bool { signals.has(.softLimit) }

    /// Throws `SoftTimeLimitExceeded` once the soft time limit has passed: call it now and then in work that never
    /// awaits (a CPU-bound loop), which cancellation cannot interrupt.
    public func checkSoftTimeLimit() throws {
        guard softTimeLimitExceeded else { return }
        throw SoftTimeLimitExceeded(limit: message.timeLimit.soft ?? .zero)
    }
}

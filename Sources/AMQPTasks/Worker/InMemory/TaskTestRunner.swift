import AMQP
import FoundationEssentials
import Logging
import Tracing

/// Runs tasks through a worker's whole per-task path — decode, middleware, admission, handler, recording — in
/// memory, without a broker: for fast tests of your handlers and middleware.
///
/// ```swift
/// var registry = TaskRegistry()
/// try registry.register("mail.send") { task in .string("sent to \(task.message.kwargs["to"]!)") }
/// let runner = TaskTestRunner(registry: registry, middleware: [Audit()])
/// let report = try await runner.run("mail.send", kwargs: ["to": "a@example.com"])
/// #expect(report.result == .string("sent to \"a@example.com\""))
/// ```
///
/// What a worker would publish is kept in the report: the results and states on the task's `reply_to`, the tasks
/// it sends (links, chain steps, errbacks), the copies it parks in the delay queues (retries, `eta` ahead) and its
/// dead letters. Time limits, expiry and retries behave as in a worker; a retry is parked, not run again (run
/// `report.parked` yourself to go on).
public struct TaskTestRunner: Sendable {
    public let registry: TaskRegistry
    public let middleware: [any TaskMiddleware]
    public let configuration: WorkerConfiguration
    public let queue: String
    private let state = WorkerState()
    private let logger: Logger
    private let tracing: TaskTracing

    /// The reply queue `run(_:args:kwargs:)` gives its tasks, so their results are recorded.
    public static let replyQueue = "amqp-tasks.test.reply"

    /// - Parameter tracer: traces the runs as a `Worker` would (see `Worker.init`); nil means the process's
    ///   bootstrapped one.
    public init(
        registry: TaskRegistry, middleware: [any TaskMiddleware] = [],
        configuration: WorkerConfiguration = WorkerConfiguration(), queue: String = "celery",
        logger: Logger = Logger(label: "amqp-tasks.test"), tracer: (any Tracer)? = nil
    ) {
        self.tracing = TaskTracing(tracer)
        self.registry = registry
        self.middleware = middleware
        self.configuration = configuration
        self.queue = queue
        self.logger = logger
    }

    /// Runs a task called `name` with these arguments, as a worker that took it from `queue` would.
    public func run(_ name: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:]) async throws
        -> TaskTestReport
    {
        var message = TaskMessage(name: name, args: args, kwargs: kwargs)
        message.replyTo = Self.replyQueue
        return try await run(message)
    }

    /// Runs a task message as a worker that took it from `queue` would.
    public func run(_ message: TaskMessage, redelivered: Bool = false) async throws -> TaskTestReport {
        let (properties, body) = message.encode()
        return try await run(ReceivedMessage(body: body, properties: properties, queue: queue, redelivered: redelivered))
    }

    /// Runs any message, malformed ones too, as a worker that took it from its queue would. Throws what the worker
    /// would requeue the message for: `CancellationError`, or an error of the outbox (never, in memory).
    public func run(_ received: ReceivedMessage) async throws -> TaskTestReport {
        let outbox = MemoryOutbox()
        let pipeline = TaskPipeline(
            queue: received.queue, configuration: configuration, registry: registry, state: state,
            middleware: TaskPipeline.middleware(
                state: state, events: nil, hostname: configuration.hostname, tracing: tracing, user: middleware),
            outbox: outbox, logger: logger)
        let outcome = try await pipeline.handle(received)
        return TaskTestReport(outcome: outcome, outbox: outbox)
    }

    /// Marks task ids as revoked, as `celery control revoke` would.
    public func revoke(_ ids: [String]) { _ = state.revoke(ids, terminate: false) }
}

import FoundationEssentials

/// Cross-cutting behaviour around every task a worker takes, in Swift: what Celery users do with signals
/// (`task_received`, `task_prerun`, `task_postrun`, `task_success`, `task_failure`, `task_retry`, `task_revoked`,
/// `task_rejected`) and swift-jobs users with `JobMiddleware`.
///
/// ```swift
/// struct Audit: TaskMiddleware {
///     func willRun(_ task: TaskContext) async throws {
///         if task.taskName.hasPrefix("admin.") && task.message.kwargs["token"] == nil {
///             throw TaskRejection(reason: "unauthorised", message: "admin tasks need a token")
///         }
///     }
///     func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue {
///         do { return try await next(task) }
///         catch let error as URLError { throw TaskRetry(countdown: .seconds(5), reason: TaskFailure(type: "URLError", message: "\(error)")) }
///     }
///     func recorded(_ outcome: TaskOutcome, of task: TaskContext) async {
///         task.logger.info("recorded \(outcome)")
///     }
/// }
/// let worker = Worker(configuration: configuration, registry: registry, middleware: [Audit()])
/// ```
///
/// Every member has a default that does nothing, so a middleware implements only what it needs. A worker calls
/// its middleware in the order given for `received`, `willRun` and `run` (the first wraps the others), and in the
/// reverse order for `recorded` and `rejected`. The worker's own events, logging and revocation checks are
/// middleware too, and run outside the ones you add.
///
/// `received`, `willRun` and `run` decide the task's fate by what they throw: `TaskRejection` moves it to
/// `<queue>.dead` with a reason, `TaskRetry` sends it again later, `TaskRevoked` answers REVOKED, any other error
/// is its FAILURE. `recorded` and `rejected` only observe: the outcome is already safely recorded, and the task is
/// acknowledged after them.
public protocol TaskMiddleware: Sendable {
    /// A task was decoded; before the worker looks at its expiry, `eta` and handler.
    func received(_ task: TaskContext) async throws
    /// The task is about to run: it is not expired, due, and has a handler.
    func willRun(_ task: TaskContext) async throws
    /// Runs the task: call `next` to go on to the next middleware and finally the handler.
    func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue
    /// The task's outcome is recorded; the task is acknowledged next.
    func recorded(_ outcome: TaskOutcome, of task: TaskContext) async
    /// A message that never became a task (it did not decode) was moved to `<queue>.dead`.
    func rejected(_ message: ReceivedMessage, because rejection: TaskRejection) async
}

extension TaskMiddleware {
    public func received(_ task: TaskContext) async throws {}
    public func willRun(_ task: TaskContext) async throws {}
    public func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws
        -> JSONValue
    {
        try await next(task)
    }
    public func recorded(_ outcome: TaskOutcome, of task: TaskContext) async {}
    public func rejected(_ message: ReceivedMessage, because rejection: TaskRejection) async {}
}

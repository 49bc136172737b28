import FoundationEssentials
import Logging

/// Runs one kind of task. Return the result as JSON; throw `TaskRetry` to retry, a `TaskFailure` for a
/// failure with a Celery exception type, any other error for a FAILURE named after its Swift type.
///
/// Handlers run as Swift tasks, never on the connection's I/O thread. A handler with a hard time limit runs on a
/// thread of its consumer's own (a `TaskExecutor`), off Swift's cooperative pool (2 threads on a 2-core machine):
/// if it blocks its thread or ignores cancellation past the limit, it holds only that one; its child tasks share
/// that thread (use `Task.detached` for parallel CPU work). Handlers without a hard limit run on the pool: one that
/// blocks a thread (CPU-bound loops, blocking I/O) should hop to its own, e.g. with `DispatchQueue.global().async`
/// inside `withCheckedContinuation`, or get a `time_limit`, or run as an exec handler. At the soft time limit the
/// handler's task is cancelled and `TaskContext.softTimeLimitExceeded` says why (see "Time limits" in the README).
public protocol TaskHandler: Sendable {
    func run(_ context: TaskContext) async throws -> JSONValue
}

/// A handler made from a closure.
public struct ClosureTaskHandler: TaskHandler {
    let body: @Sendable (TaskContext) async throws -> JSONValue
    public init(_ body: @escaping @Sendable (TaskContext) async throws -> JSONValue) { self.body = body }
    public func run(_ context: TaskContext) async throws -> JSONValue { try await body(context) }
}

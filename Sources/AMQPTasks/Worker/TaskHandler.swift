import Foundation
import Logging

/// Runs one kind of task. Return the result as JSON; throw `TaskRetry` to retry, a `TaskFailure` for a
/// failure with a Celery exception type, any other error for a FAILURE named after its Swift type.
///
/// Handlers run as Swift tasks on the cooperative pool (2 threads on a 2-core machine), never on the connection's
/// I/O thread. A handler that blocks a thread (CPU-bound loops, blocking I/O) should hop to its own thread, e.g.
/// with `DispatchQueue.global().async` inside `withCheckedContinuation`, or run as an exec handler.
public protocol TaskHandler: Sendable {
    func run(_ context: TaskContext) async throws -> JSONValue
}

/// A handler made from a closure.
public struct ClosureTaskHandler: TaskHandler {
    let body: @Sendable (TaskContext) async throws -> JSONValue
    public init(_ body: @escaping @Sendable (TaskContext) async throws -> JSONValue) { self.body = body }
    public func run(_ context: TaskContext) async throws -> JSONValue { try await body(context) }
}

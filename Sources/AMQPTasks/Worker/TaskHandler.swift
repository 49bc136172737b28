import Foundation
import Logging

/// What a handler (and a middleware) knows about the task it runs.
public struct TaskContext: Sendable {
    /// The task as decoded; the worker fills in the hard time limit and `ignore_result` it applies.
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
        logger[metadataKey: "task_id"] = "\(message.id)"
        logger[metadataKey: "task"] = "\(message.name)"
        self.logger = logger
    }

    public var taskId: String { message.id }
    public var taskName: String { message.name }
    public var retries: Int { message.retries }
}

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

/// Thrown by a handler to run the task again later (Celery's `self.retry`).
public struct TaskRetry: Error, Sendable {
    /// How long to wait; nil uses the worker's retry policy (exponential backoff with jitter).
    public var countdown: Duration?
    /// Overrides the policy's maximum number of retries.
    public var maxRetries: Int?
    /// Why: reported in the RETRY state and, once retries are exhausted, as the FAILURE.
    public var reason: TaskFailure

    public init(countdown: Duration? = nil, maxRetries: Int? = nil, reason: TaskFailure = TaskFailure(type: "Retry", message: "retry requested", module: "celery.exceptions")) {
        self.countdown = countdown
        self.maxRetries = maxRetries
        self.reason = reason
    }
}

/// The task names a worker can run and their handlers.
public struct TaskRegistry: Sendable {
    private(set) var handlers: [String: any TaskHandler] = [:]

    public init() {}

    public var names: [String] { handlers.keys.sorted() }

    public func handler(for name: String) -> (any TaskHandler)? { handlers[name] }

    /// Registers a handler by name; a name registered already throws `TaskRegistry.DuplicateName` (a second
    /// handler never silently replaces the first).
    public mutating func register(_ name: String, _ handler: any TaskHandler) throws(DuplicateName) {
        guard handlers[name] == nil else { throw DuplicateName(name: name) }
        handlers[name] = handler
    }

    /// Registers a closure taking the raw task context.
    public mutating func register(_ name: String, _ body: @escaping @Sendable (TaskContext) async throws -> JSONValue)
        throws(DuplicateName)
    {
        try register(name, ClosureTaskHandler(body))
    }

    /// A task name registered twice.
    public struct DuplicateName: Error, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String {
            "task \(name) is registered already: each task name has one handler (rename one, or register it once)"
        }
    }

    /// Registers a typed handler: arguments decoded from the task's kwargs (and named positional args), the
    /// result encoded to JSON.
    public mutating func register<A: TaskArguments, R: Encodable & Sendable>(
        _ type: A.Type, _ body: @escaping @Sendable (A, TaskContext) async throws -> R
    ) throws(DuplicateName) {
        try register(A.taskName, ClosureTaskHandler { context in
            let arguments: A
            do {
                arguments = try A.decode(from: context.message)
            } catch {
                throw TaskFailure(type: "TypeError", message: "arguments of \(A.taskName) do not decode: \(error)")
            }
            return try JSONValue(encoding: try await body(arguments, context))
        })
    }
}

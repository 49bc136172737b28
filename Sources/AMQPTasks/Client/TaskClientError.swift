import AMQP

/// Why a `TaskClient` call did not do what was asked: the client is closed, the broker did not confirm a task,
/// a wait or a send ran out of time, or the arguments were wrong. Match the code in a `catch`:
///
/// ```swift
/// do {
///     let result = try await client.result(for: id, timeout: .seconds(10))
/// } catch TaskClientError.timedOut {
///     // no result yet: ask again later
/// } catch TaskClientError.notConfirmed {
///     // the broker refused the task (unroutable, nacked): `error.cause` says why
/// }
/// ```
///
/// Failures of the connection itself (no broker answers `connect`) stay `AMQPError`; a task that ran and failed
/// is a `TaskFailure`. Where the broker or the connection said why, `cause` holds that `AMQPError`.
public struct TaskClientError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Extensible: new codes may be added; match the ones you handle.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A short name, e.g. `closed`.
        public let rawValue: String

        public init(_ rawValue: String) { self.rawValue = rawValue }

        /// The client was closed (`close()`, or its service ended) before or while the call ran.
        public static let closed = Code("closed")
        /// The broker did not take the task: it was unroutable (no queue bound for it), refused (`basic.nack`,
        /// a missing exchange) or its channel was closed. The task is not in any queue.
        public static let notConfirmed = Code("notConfirmed")
        /// The time given ran out: no final result within the wait, or the broker stayed out of reach (or kept
        /// refusing the task) for the whole `ReconnectPolicy.sendRetryWindow`. The task may still run.
        public static let timedOut = Code("timedOut")
        /// The call's arguments cannot be sent: typed arguments that do not encode to a JSON object, an option
        /// the protocol cannot carry (a header name or id over 255 bytes). Nothing was sent.
        public static let badArguments = Code("badArguments")

        public var description: String { rawValue }

        /// `catch TaskClientError.timedOut` matches a `TaskClientError` with that code.
        public static func ~= (code: Code, error: any Error) -> Bool {
            (error as? TaskClientError)?.code == code
        }
    }

    /// The codes again, so a `catch` reads `catch TaskClientError.closed`.
    public static let closed = Code.closed
    /// See `Code.notConfirmed`.
    public static let notConfirmed = Code.notConfirmed
    /// See `Code.timedOut`.
    public static let timedOut = Code.timedOut
    /// See `Code.badArguments`.
    public static let badArguments = Code.badArguments

    /// What kind of failure this is.
    public let code: Code
    /// What was asked: `send`, `result`, …
    public let operation: String
    /// The task concerned, when there is one.
    public let taskId: String?
    /// What happened and what to do about it.
    public let message: String
    /// How many times the task was published, counting the first (sends only).
    public let attempts: Int?
    /// How long a result wait lasted before it gave up (`timedOut` results only).
    public let timeout: Duration?
    /// The broker's or the connection's own error, when there is one.
    public let cause: AMQPError?

    public init(
        _ code: Code, operation: String, taskId: String? = nil, message: String, attempts: Int? = nil,
        timeout: Duration? = nil, cause: AMQPError? = nil
    ) {
        self.code = code
        self.operation = operation
        self.taskId = taskId
        self.message = message
        self.attempts = attempts
        self.timeout = timeout
        self.cause = cause
    }

    public var description: String {
        var text = "\(operation): \(message)"
        if let cause { text += " (\(cause))" }
        return text
    }

    // MARK: The client's failures, worded once

    static func clientClosed(_ operation: String, taskId: String? = nil) -> TaskClientError {
        TaskClientError(
            .closed, operation: operation, taskId: taskId,
            message: "the task client was closed; connect a new one to go on")
    }

    static func noResult(_ taskId: String, within timeout: Duration) -> TaskClientError {
        TaskClientError(
            .timedOut, operation: "result", taskId: taskId,
            message: "no result for task \(taskId) within \(timeout): is a worker consuming its queue? (amqp-task queues shows consumers) The task may still run: ask again later",
            timeout: timeout)
    }

    /// The broker stayed out of reach, or kept refusing the task, for the whole send window.
    static func sendWindowExhausted(_ taskId: String, attempts: Int, window: Duration, lastError: Error)
        -> TaskClientError
    {
        TaskClientError(
            .timedOut, operation: "send", taskId: taskId,
            message: "task \(taskId) was not confirmed by the broker after \(attempts) attempt(s) within the send window of \(window) (ReconnectPolicy.sendRetryWindow): the broker may still have it (sending it again with the same id is safe for idempotent tasks)",
            attempts: attempts, cause: lastError as? AMQPError)
    }

    /// The broker refused one message of a send, or the protocol cannot carry it.
    static func refused(_ taskId: String, attempts: Int, cause: AMQPError) -> TaskClientError {
        if cause.kind == .invalidArgument {
            return TaskClientError(
                .badArguments, operation: "send", taskId: taskId,
                message: "task \(taskId) cannot be sent as given; nothing was published", attempts: attempts, cause: cause)
        }
        if cause.kind == .unroutable {
            return TaskClientError(
                .notConfirmed, operation: "send", taskId: taskId,
                message: "task \(taskId) was returned by the broker: no queue is bound for it; declare the queue (amqp-task declare) or fix the route",
                attempts: attempts, cause: cause)
        }
        return TaskClientError(
            .notConfirmed, operation: "send", taskId: taskId, message: "task \(taskId) was not taken by the broker",
            attempts: attempts, cause: cause)
    }
}

/// The old name of a send that was not confirmed; it is a `TaskClientError` now.
@available(*, deprecated, renamed: "TaskClientError")
public typealias SendFailure = TaskClientError

/// The old name of a result wait that ran out; it is a `TaskClientError` with code `.timedOut` now (a `catch` of
/// this name catches every client error: match `TaskClientError.timedOut` instead).
@available(*, deprecated, renamed: "TaskClientError")
public typealias ResultTimeout = TaskClientError

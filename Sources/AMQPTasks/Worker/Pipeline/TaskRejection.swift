import FoundationEssentials

/// Moves a message to `<queue>.dead` with a reason instead of running it. The pipeline throws it for messages it
/// cannot take (`reason` is one of `DeadLetterReason`'s values); a middleware throws it to refuse a task
/// (`TaskRejection(reason: "quota-exceeded", message: "…")`), and the task's caller gets a FAILURE saying why.
public struct TaskRejection: Error, Sendable, CustomStringConvertible {
    /// The `x-amqp-tasks-reason` header of the dead letter: a short lower-case word.
    public var reason: String
    /// What was wrong, for people: the `x-amqp-tasks-error` header and the caller's FAILURE message.
    public var message: String
    /// The FAILURE sent to the caller's `reply_to` when the message names one (best effort: the message is safe
    /// in `<queue>.dead` already). Nil for the default, `TaskRejected(message)`.
    public var callerFailure: TaskFailure?
    /// The task's id and name when the message said them (a message that does not decode may not).
    public var taskId: String?
    public var taskName: String?
    /// The caller's FAILURE is part of the recorded outcome (published and confirmed before the dead letter, so the
    /// task is requeued when it cannot be), not best effort: for tasks nobody registered, whose callers wait.
    var callerMustBeTold = false

    public init(reason: String, message: String, callerFailure: TaskFailure? = nil) {
        self.reason = reason
        self.message = message
        self.callerFailure = callerFailure
    }

    public var description: String { "\(reason): \(message)" }
}

/// The reasons the worker itself writes in a dead letter's `x-amqp-tasks-reason` header, besides the decode
/// reasons of `TaskMessageError.Reason` and those of middleware that throws `TaskRejection`.
public enum DeadLetterReason {
    /// The AMQP layer cut headers nested too deep (`Delivery.contentProblem`).
    public static let malformedHeaders = "malformed-headers"
    /// The body is over `[worker] max_message_size`.
    public static let messageTooLarge = "message-too-large"
    /// No handler is registered under the task's name.
    public static let unknownTask = "unknown-task"
    /// The outcome could not be recorded in `[worker] record_attempts` attempts.
    public static let outcomeNotRecorded = "outcome-not-recorded"
}

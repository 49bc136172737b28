import FoundationEssentials

/// What became of a task, as recorded (the broker confirmed it) before the task is acknowledged. Middleware sees it
/// in `TaskMiddleware.recorded(_:of:)`.
public enum TaskOutcome: Sendable {
    /// The handler returned this result (SUCCESS), after running for `runtime`.
    case succeeded(JSONValue, runtime: Duration)
    /// FAILURE: the handler threw, exceeded its time limit, or asked for a retry when none was left (`runtime` is nil
    /// when it failed before running).
    case failed(TaskFailure, runtime: Duration?)
    /// RETRY: the task was sent again to run after `delay`, as retry number `retries` of at most `maxRetries`.
    case retried(TaskFailure, delay: Duration, retries: Int, maxRetries: Int)
    /// REVOKED: revoked by remote control, expired, or terminated while it ran.
    case revoked(TaskRevoked.Reason)
    /// Moved to `<queue>.dead` with its reason; never run.
    case rejected(TaskRejection)
    /// Its `eta` is ahead: parked in a delay queue for `step`, and looked at again then.
    case deferred(step: Duration)
}

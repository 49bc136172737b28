import FoundationEssentials

/// The task's soft time limit has passed: the Swift counterpart of Celery's `SoftTimeLimitExceeded`.
///
/// `TaskContext.checkSoftTimeLimit()` throws it; a handler that lets it (or the cancellation the soft limit causes)
/// escape fails with a FAILURE of type `SoftTimeLimitExceeded` (module `billiard.exceptions`), which a Celery caller
/// raises as its own `SoftTimeLimitExceeded`. Catch it to clean up and return a result of your own instead.
public struct SoftTimeLimitExceeded: Error, Sendable, Hashable, CustomStringConvertible {
    /// The soft limit that passed.
    public let limit: Duration

    public init(limit: Duration) { self.limit = limit }

    public var description: String { "the soft time limit of \(limit.secondsValue) s has passed" }

    /// The FAILURE it is recorded as: Celery's exception type, with the limit in seconds.
    public var failure: TaskFailure {
        TaskFailure(type: "SoftTimeLimitExceeded", message: "\(limit.secondsValue)", module: "billiard.exceptions")
    }
}

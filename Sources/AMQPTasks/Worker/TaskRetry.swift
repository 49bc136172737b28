import FoundationEssentials
import Logging

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

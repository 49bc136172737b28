import Foundation

/// When and how often a task is retried: Celery's `max_retries`, `default_retry_delay`, `retry_backoff`,
/// `retry_backoff_max` and `retry_jitter`.
public struct RetryPolicy: Sendable, Hashable {
    /// Retries after the first attempt; then the task fails. Celery's default is 3.
    public var maxRetries: Int = 3
    /// With backoff: the first delay, doubled on each retry. Without: the fixed delay.
    public var baseDelay: Duration = .seconds(1)
    /// Exponential backoff (Celery's `retry_backoff=True`).
    public var backoff: Bool = true
    /// The longest delay (Celery's `retry_backoff_max`, 600 s).
    public var maxDelay: Duration = .seconds(600)
    /// Full jitter: a random delay between 0 and the computed one, so retries of many tasks spread out.
    public var jitter: Bool = true

    public init(
        maxRetries: Int = 3, baseDelay: Duration = .seconds(1), backoff: Bool = true, maxDelay: Duration = .seconds(600),
        jitter: Bool = true
    ) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.backoff = backoff
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// Seconds to wait before retry number `retries + 1`.
    public func delay(afterRetries retries: Int) -> Double {
        let base = baseDelay.secondsValue
        let longest = maxDelay.secondsValue
        let computed = backoff ? min(longest, base * pow(2, Double(retries))) : min(longest, base)
        return jitter ? Double.random(in: 0...computed) : computed
    }
}

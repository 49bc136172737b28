import FoundationEssentials

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

    /// The delay before retry number `retries + 1` before jitter: `baseDelay`, doubled per earlier retry with
    /// backoff, at most `maxDelay`.
    public func computedDelay(afterRetries retries: Int) -> Duration {
        guard backoff else { return min(maxDelay, baseDelay) }
        // Doubling stops at 2^32 × baseDelay, and the bound is checked by division: no overflow.
        let factor = 1 << min(max(retries, 0), 32)
        guard baseDelay <= maxDelay / factor else { return maxDelay }  // no overflow for any baseDelay
        return baseDelay * factor
    }

    /// The wait before retry number `retries + 1`, with jitter drawn from `random`.
    public func delay(afterRetries retries: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let computed = computedDelay(afterRetries: retries)
        return jitter ? computed * Double.random(in: 0...1, using: &random) : computed
    }

    /// The wait before retry number `retries + 1`, with the system's random numbers.
    public func delay(afterRetries retries: Int) -> Duration {
        var random = SystemRandomNumberGenerator()
        return delay(afterRetries: retries, using: &random)
    }
}

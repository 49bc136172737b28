import FoundationEssentials

/// How a `TaskClient` rides out a lost connection (a broker restart, a node that died, a connection an operator
/// closed): it reconnects with exponential backoff and jitter, trying each broker URL in turn, re-declares its reply
/// queue and resumes consuming results; a send whose connection was lost before the broker confirmed it is
/// published again on the new connection.
public struct ReconnectPolicy: Sendable, Hashable {
    /// How long a send keeps reconnecting and republishing before it fails with `TaskClientError.timedOut`.
    /// Zero: a send fails with the first lost connection.
    public var sendRetryWindow: Duration = .seconds(60)
    /// The first pause between connection attempts; it doubles with each failed attempt.
    public var initialDelay: Duration = .milliseconds(200)
    /// The longest pause between connection attempts.
    public var maxDelay: Duration = .seconds(5)

    public init(
        sendRetryWindow: Duration = .seconds(60), initialDelay: Duration = .milliseconds(200),
        maxDelay: Duration = .seconds(5)
    ) {
        self.sendRetryWindow = sendRetryWindow
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
    }

    /// The backoff for attempt `attempt` (1, 2, …) before jitter: `initialDelay` doubled per earlier attempt,
    /// at most `maxDelay`.
    func backoff(beforeAttempt attempt: Int) -> Duration {
        let factor = 1 << min(max(attempt - 1, 0), 16)
        guard initialDelay <= maxDelay / factor else { return maxDelay }  // no overflow for any initialDelay
        return initialDelay * factor
    }

    /// The pause before attempt `attempt`: its backoff, the lower half of it random (jitter), so many clients that
    /// lost the same broker do not all come back at the same instant.
    func delay(beforeAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let backoff = backoff(beforeAttempt: attempt)
        return backoff / 2 + (backoff / 2) * Double.random(in: 0...1, using: &random)
    }

    /// The pause before attempt `attempt`, with the system's random numbers.
    func delay(beforeAttempt attempt: Int) -> Duration {
        var random = SystemRandomNumberGenerator()
        return delay(beforeAttempt: attempt, using: &random)
    }
}

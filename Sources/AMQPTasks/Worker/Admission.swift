import FoundationEssentials

/// What a worker does with a decoded task before looking for its handler, decided from the task's headers and the
/// time alone (pure, so the fuzzer drives it with any header a producer can send).
public enum Admission: Sendable, Equatable {
    /// Its `expires` has passed: answered REVOKED without running.
    case expired
    /// Its `eta` is `remaining` ahead, more than `TaskMessage.etaHoldLimit`: parked in the delay levels
    /// (`NativeDelayedDelivery`) for `step` (whole seconds, rounded up so it never comes back early) and looked at
    /// again then.
    case wait(remaining: Duration, step: Duration)
    /// Its `eta` is `remaining` ahead, at most `TaskMessage.etaHoldLimit`: held that long, then run. A task comes
    /// back this early only from a Celery client, which truncates its delay to whole seconds, or from a clock
    /// ahead of this worker's.
    case hold(remaining: Duration)
    /// Run it now, with this hard time limit (nil: none).
    case run(timeLimit: Duration?)
}

extension TaskMessage {
    /// An `eta` at most this far ahead is waited out in memory rather than parked again: parking would make the
    /// task up to a second late and cost another publish; holding keeps a consumer slot busy for at most this long.
    public static let etaHoldLimit: Duration = .seconds(1)

    /// How to treat this task at `now`: expired, waiting, or to run with the time limit it asked for (else
    /// `configuredTimeLimit`, the task's `[tasks."NAME"] time_limit`). A task never runs before its `eta`.
    public func admission(now: Date, configuredTimeLimit: Duration? = nil) -> Admission {
        if let expires = expiresDate, expires < now { return .expired }
        if let eta = etaDate {
            let seconds = eta.timeIntervalSince(now)
            if seconds > Self.etaHoldLimit.secondsValue {
                let wait = Duration.clampedSeconds(seconds)
                return .wait(remaining: wait, step: .seconds(NativeDelayedDelivery.delaySeconds(for: wait)))
            }
            if seconds > 0 { return .hold(remaining: .clampedSeconds(seconds)) }
        }
        let limit = timeLimit.hard ?? configuredTimeLimit
        return .run(timeLimit: limit.flatMap { $0 > .zero ? $0 : nil })
    }
}

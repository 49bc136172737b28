import Foundation

/// What a worker does with a decoded task before looking for its handler, decided from the task's headers and the
/// time alone (pure, so the fuzzer drives it with any header a producer can send).
public enum Admission: Sendable, Equatable {
    /// Its `expires` has passed: answered REVOKED without running.
    case expired
    /// Its `eta` is `remaining` ahead: parked for one step of `DelayQueues` (`step`, whole seconds) and looked at
    /// again then.
    case wait(remaining: Duration, step: Duration)
    /// Run it now, with this hard time limit (nil: none).
    case run(timeLimit: Duration?)
}

extension TaskMessage {
    /// An `eta` less than this far ahead runs at once: the delay queues count whole seconds.
    public static let etaSlack: Duration = .milliseconds(500)

    /// How to treat this task at `now`: expired, waiting, or to run with the time limit it asked for (else
    /// `configuredTimeLimit`, the task's `[tasks."NAME"] time_limit`).
    public func admission(now: Date, configuredTimeLimit: Duration? = nil) -> Admission {
        if let expires = expiresDate, expires < now { return .expired }
        if let eta = etaDate {
            let seconds = eta.timeIntervalSince(now)
            if seconds > Self.etaSlack.secondsValue {
                let wait = Duration.clampedSeconds(seconds)
                return .wait(remaining: wait, step: DelayQueues.step(for: wait))
            }
        }
        let limit = timeLimit.hard ?? configuredTimeLimit
        return .run(timeLimit: limit.flatMap { $0 > .zero ? $0 : nil })
    }
}

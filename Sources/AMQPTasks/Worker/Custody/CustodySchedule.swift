/// When a long task is taken into custody, and when its held copy is renewed, so that no delivery stays
/// unacknowledged on any channel for as long as the broker's `consumer_timeout` (`[worker] consumer_timeout`).
///
/// The broker closes a channel whose oldest unacknowledged delivery is older than the timeout, checking about once
/// a minute, so never before the timeout has passed. A delivery (the task's own, then each custody copy) is
/// therefore held for at most half of it: the other half is margin for the custody step itself.
public struct CustodySchedule: Sendable, Equatable {
    /// The broker's `consumer_timeout`, as the operator set it.
    public let consumerTimeout: Duration

    /// The smallest timeout custody works with: below it, the steps would come too often to be worth anything.
    public static let shortestTimeout: Duration = .seconds(10)

    public init(consumerTimeout: Duration) { self.consumerTimeout = consumerTimeout }

    /// How long one delivery is held before the next custody step (take, then renew): half the timeout.
    public var holdLimit: Duration { consumerTimeout / 2 }

    /// After a custody step that failed (the copy could not be published or did not arrive), the pause before the
    /// next try: a tenth of the timeout, at most 30 s, so a few tries fit in the margin.
    public var retryPause: Duration { min(consumerTimeout / 10, .seconds(30)) }

    /// How long after `heldSince` (the delivery or the latest copy) the next custody step is due: `holdLimit` after
    /// a step that worked, `retryPause` after one that failed.
    public func nextStep(heldSince: ContinuousClock.Instant, lastStepFailed: Bool, now: ContinuousClock.Instant)
        -> ContinuousClock.Instant
    {
        lastStepFailed ? now + retryPause : heldSince + holdLimit
    }
}

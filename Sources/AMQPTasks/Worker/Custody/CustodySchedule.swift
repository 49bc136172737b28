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

    /// How often a slot's `CustodyWatch` looks at its running task: a quarter of `holdLimit`, at most a minute. A
    /// step is due at most this long after `holdLimit`, well within the other half of the timeout, and a step that
    /// failed is tried again this long after.
    public var lookInterval: Duration { min(holdLimit / 4, .seconds(60)) }

    /// True when a delivery held since `heldSince` (the task's delivery or its latest copy) is due for the next
    /// custody step (take, then renew).
    public func isDue(heldSince: ContinuousClock.Instant, now: ContinuousClock.Instant) -> Bool {
        now - heldSince >= holdLimit
    }
}

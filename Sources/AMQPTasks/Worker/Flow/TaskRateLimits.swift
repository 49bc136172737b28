import Foundation
import Synchronization

/// The rate limits of one worker, per task name, as Celery keeps them: each task name has a bucket that holds
/// one start, refilled at its rate, so starts are spaced at least `1 / rate` apart within this worker (Celery's
/// limits are per worker too). Limits change at run time (`celery control rate_limit`).
///
/// A start is reserved when asked for: concurrent consumers of the same task each get the next free time, in the
/// order they ask, so none is starved and none starts early.
final class TaskRateLimits: Sendable {
    private struct Bucket {
        var limit: RateLimit
        /// When the next start is free.
        var nextFree: ContinuousClock.Instant
    }

    private let buckets: Mutex<[String: Bucket]>

    init(_ limits: [String: RateLimit] = [:]) {
        let now = ContinuousClock.now
        buckets = Mutex(limits.mapValues { Bucket(limit: $0, nextFree: now) })
    }

    /// Sets (or with nil removes) the limit of `task`; starts already reserved keep their time.
    func set(_ limit: RateLimit?, for task: String) {
        buckets.withLock { buckets in
            guard let limit else {
                buckets[task] = nil
                return
            }
            buckets[task] = Bucket(limit: limit, nextFree: buckets[task]?.nextFree ?? .now)
        }
    }

    /// The limit of `task` now, if any.
    func limit(for task: String) -> RateLimit? { buckets.withLock { $0[task]?.limit } }

    /// Reserves the next start of `task`; returns how long to wait for it (zero when it may start now, or when
    /// the task has no limit).
    func reserve(_ task: String, now: ContinuousClock.Instant = .now) -> Duration {
        buckets.withLock { buckets in
            guard var bucket = buckets[task] else { return .zero }
            let start = max(bucket.nextFree, now)
            bucket.nextFree = start + bucket.limit.interval
            buckets[task] = bucket
            return start - now
        }
    }
}

import FoundationEssentials
import Synchronization

/// What a worker is doing, shared by its consumers, its events and its remote-control answers.
///
/// A lock rather than an actor: every task touches it three times, and an actor call may hop executors each time.
final class WorkerState: Sendable {
    /// A task being run, as `inspect active` reports it.
    struct ActiveTask: Sendable {
        let message: TaskMessage
        let queue: String
        let redelivered: Bool
        let started: Date
        let cancel: @Sendable () -> Void
    }

    private struct Contents {
        var activeTasks: [String: ActiveTask] = [:]
        var processedCounts: [String: Int] = [:]
        var revoked: ExpiringIDSet
        var clock = 0
    }

    private let contents: Mutex<Contents>

    /// Fires the time limits of this worker's handlers and counts those it stopped waiting for.
    let watchdog = HandlerWatchdog()
    /// Rate limits per task name, from the configuration and `celery control rate_limit`.
    let rateLimits = TaskRateLimits()
    /// Wakes the tasks waiting for their start under a rate limit when they are revoked.
    let startWaits = StartWaitRelease()
    /// Time limits per task name set by `celery control time_limit`, replacing the configured ones.
    let timeLimits = TaskTimeLimits()

    /// How many revoked ids a worker remembers: Celery's `REVOKES_MAX`. The oldest revocation is forgotten first.
    static let revokedCapacity = 50_000
    /// How long a revocation counts, in seconds: Celery's `REVOKE_EXPIRES` (3 hours). By then a task that waited
    /// in a queue has normally run or expired.
    static let revokedLifetime: Double = 3 * 3600

    init(revokedCapacity: Int = revokedCapacity) {
        contents = Mutex(Contents(revoked: ExpiringIDSet(capacity: revokedCapacity, lifetime: Self.revokedLifetime)))
    }

    private func locked<T>(_ body: (inout Contents) -> T) -> T {
        contents.withLock { body(&$0) }
    }

    /// The next value of the worker's Lamport clock (Celery's `clock` field). It stops at `Int.max` rather than
    /// overflow: any user of the vhost can send a message with `clock` 2^63-1, and the next tick must not trap.
    func tick() -> Int {
        locked {
            $0.clock = $0.clock == Int.max ? $0.clock : $0.clock + 1
            return $0.clock
        }
    }

    /// Merges a clock seen on an incoming message (negative ones are ignored).
    func observe(clock other: Int) { locked { $0.clock = max($0.clock, other) } }

    var active: [String: ActiveTask] { locked { $0.activeTasks } }
    var processed: [String: Int] { locked { $0.processedCounts } }
    var totalProcessed: Int { locked { $0.processedCounts.values.reduce(0, +) } }

    func started(_ task: ActiveTask) { locked { $0.activeTasks[task.message.id] = task } }

    func finished(_ id: String, name: String) {
        locked {
            $0.activeTasks.removeValue(forKey: id)
            $0.processedCounts[name, default: 0] += 1
        }
    }

    /// Marks tasks as revoked; with `terminate`, running ones are interrupted. Returns the ids that were running.
    func revoke(_ ids: [String], terminate: Bool) -> [String] {
        let running: [ActiveTask] = locked { contents in
            contents.revoked.insert(ids)
            return ids.compactMap { contents.activeTasks[$0] }
        }
        if terminate { for task in running { task.cancel() } }
        startWaits.release(ids)
        return running.map(\.message.id)
    }

    /// Adds ids revoked at `time` (read from `RevokeLog`) without touching running tasks: a revoke that reached
    /// this worker while it ran was applied when it came by remote control. A time in the future (a writer whose
    /// clock is ahead, or anything else in the stream) counts as now: taken as it is, it would expire every revoke
    /// remembered before it at once, and its own ids would stay revoked for longer than `revokedLifetime`.
    func remember(revoked ids: [String], at time: Date) {
        let now = Date()
        locked { $0.revoked.insert(ids, at: min(time, now)) }
        startWaits.release(ids)
    }

    func isRevoked(_ id: String) -> Bool { locked { $0.revoked.contains(id) } }

    /// The revoked ids still remembered, sorted (at most `revokedCapacity`, none older than 3 hours).
    var revokedIDs: [String] { locked { $0.revoked.ids() } }

    /// How many revoked ids the worker remembers.
    var revokedCount: Int { locked { $0.revoked.count } }
}

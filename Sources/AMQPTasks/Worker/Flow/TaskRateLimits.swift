import FoundationEssentials
import Synchronization

/// The rate limits of one worker, per task name, as Celery keeps them: each task name has a bucket that holds
/// one start, refilled at its rate, so starts are spaced at least `1 / rate` apart within this worker (Celery's
/// limits are per worker too). Limits change at run time (`celery control rate_limit`).
///
/// A start is reserved when asked for: concurrent consumers of the same task each get the next free time, in the
/// order they ask, so none is starved and none starts early. A change of a task's limit voids the starts reserved
/// under the old one: the tasks waiting for them reserve again under the new limit (a limit of `1/h` set by
/// mistake, then lifted, must not keep every consumer holding its task for hours).
final class TaskRateLimits: Sendable {
    private struct Bucket {
        var limit: RateLimit
        /// When the next start is free.
        var nextFree: ContinuousClock.Instant
    }

    private struct Contents {
        var buckets: [String: Bucket]
        /// Bumped by every `set` of a task's limit: a wait reserved under an older limit is reserved again.
        var generations: [String: Int] = [:]
        /// The tasks waiting for their start, woken when their task's limit changes.
        var waiters: [String: [Int: CheckedContinuation<Void, Never>]] = [:]
        var nextWaiter = 0
        /// How many tasks of each name wait for their start now.
        var waiting: [String: Int] = [:]
    }

    private let contents: Mutex<Contents>

    init(_ limits: [String: RateLimit] = [:]) {
        let now = ContinuousClock.now
        contents = Mutex(Contents(buckets: limits.mapValues { Bucket(limit: $0, nextFree: now) }))
    }

    /// Sets (or with nil removes) the limit of `task`. The tasks waiting for a start reserve again under it.
    func set(_ limit: RateLimit?, for task: String) {
        let woken = contents.withLock { contents in
            contents.generations[task, default: 0] += 1
            contents.buckets[task] = limit.map { Bucket(limit: $0, nextFree: .now) }
            return contents.waiters.removeValue(forKey: task).map { Array($0.values) } ?? []
        }
        for waiter in woken { waiter.resume() }
    }

    /// The limit of `task` now, if any.
    func limit(for task: String) -> RateLimit? { contents.withLock { $0.buckets[task]?.limit } }

    /// How many tasks named `task` wait for their start now.
    func waiting(for task: String) -> Int { contents.withLock { $0.waiting[task] ?? 0 } }

    /// Reserves the next start of `task`; returns how long to wait for it (zero when it may start now, or when
    /// the task has no limit).
    func reserve(_ task: String, now: ContinuousClock.Instant = .now) -> Duration {
        contents.withLock { Self.reserve(task, now: now, in: &$0).wait }
    }

    /// Waits until `task` may start under its limit; when the limit changes meanwhile, the start is reserved again
    /// under the new one. `willWait` is told each wait before it begins. `released` (when given) ends the wait
    /// early: the task was revoked. Returns true when the task may start, false when it was released (its
    /// reserved start is given back when no later one was reserved after it). Throws `CancellationError` (a stop).
    @discardableResult
    func waitForStart(
        of task: String, releasedBy released: (@Sendable () async -> Void)? = nil,
        willWait: (Duration) -> Void = { _ in }
    ) async throws -> Bool {
        enum Woken: Sendable { case due, limitChanged, released }
        while true {
            let now = ContinuousClock.now
            let (wait, generation) = contents.withLock { Self.reserve(task, now: now, in: &$0) }
            guard wait > .zero else { return true }
            willWait(wait)
            contents.withLock { $0.waiting[task, default: 0] += 1 }
            defer {
                contents.withLock { contents in
                    contents.waiting[task, default: 1] -= 1
                    if contents.waiting[task] == 0 { contents.waiting[task] = nil }
                }
            }
            let woken = try await withThrowingTaskGroup(of: Woken.self) { group in
                group.addTask {
                    try await Task.sleep(for: wait)
                    return .due
                }
                group.addTask {
                    await self.limitChange(of: task, from: generation)
                    return .limitChanged
                }
                if let released {
                    group.addTask {
                        await released()
                        return .released
                    }
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            try Task.checkCancellation()
            switch woken {
            case .due: return true
            case .limitChanged: continue
            case .released:
                giveBack(task, start: now + wait, generation: generation)
                return false
            }
        }
    }

    /// A released wait gives its start back when it is the last one reserved (under the same limit), so the
    /// task that comes next takes it.
    private func giveBack(_ task: String, start: ContinuousClock.Instant, generation: Int) {
        contents.withLock { contents in
            guard contents.generations[task] ?? 0 == generation, var bucket = contents.buckets[task],
                bucket.nextFree == start + bucket.limit.interval
            else { return }
            bucket.nextFree = start
            contents.buckets[task] = bucket
        }
    }

    private static func reserve(_ task: String, now: ContinuousClock.Instant, in contents: inout Contents)
        -> (wait: Duration, generation: Int)
    {
        let generation = contents.generations[task] ?? 0
        guard var bucket = contents.buckets[task] else { return (.zero, generation) }
        let start = max(bucket.nextFree, now)
        bucket.nextFree = start + bucket.limit.interval
        contents.buckets[task] = bucket
        return (start - now, generation)
    }

    /// Returns once the limit of `task` changed after `generation` (at once if it has already), or once cancelled.
    private func limitChange(of task: String, from generation: Int) async {
        let id = contents.withLock { contents in
            defer { contents.nextWaiter += 1 }
            return contents.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Under the lock: a cancellation handler that runs after this finds the waiter registered, and one
                // that ran before has set `Task.isCancelled`.
                let now = contents.withLock { contents in
                    if Task.isCancelled || contents.generations[task] ?? 0 != generation { return true }
                    contents.waiters[task, default: [:]][id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = contents.withLock { contents in
                let waiter = contents.waiters[task]?.removeValue(forKey: id)
                if contents.waiters[task]?.isEmpty == true { contents.waiters[task] = nil }
                return waiter
            }
            waiter?.resume()
        }
    }
}

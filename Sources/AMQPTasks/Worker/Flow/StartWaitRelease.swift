import FoundationEssentials
import Synchronization

/// Wakes the tasks that wait for their start (their turn under a rate limit, a token of a cluster-wide one) when
/// they are revoked, so a revoked task ends REVOKED at once, not after waiting its turn, and its consumer takes the
/// next task.
final class StartWaitRelease: Sendable {
    private struct Contents {
        var waiters: [String: [Int: CheckedContinuation<Void, Never>]] = [:]
        var nextWaiter = 0
    }

    private let contents = Mutex(Contents())

    /// Wakes the waits of the tasks `ids`.
    func release(_ ids: [String]) {
        let woken = contents.withLock { contents in
            ids.flatMap { contents.waiters.removeValue(forKey: $0).map { Array($0.values) } ?? [] }
        }
        for waiter in woken { waiter.resume() }
    }

    /// Returns once task `taskId` is released (at once when `isReleased` says it already is), or once cancelled.
    /// `isReleased` is asked under this object's lock, so a `release` that comes after it was asked wakes the wait.
    func wait(for taskId: String, isReleased: @Sendable () -> Bool) async {
        let id = contents.withLock { contents in
            defer { contents.nextWaiter += 1 }
            return contents.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = contents.withLock { contents in
                    if Task.isCancelled || isReleased() { return true }
                    contents.waiters[taskId, default: [:]][id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = contents.withLock { contents in
                let waiter = contents.waiters[taskId]?.removeValue(forKey: id)
                if contents.waiters[taskId]?.isEmpty == true { contents.waiters[taskId] = nil }
                return waiter
            }
            waiter?.resume()
        }
    }
}

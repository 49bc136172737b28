import FoundationEssentials
import Glibc
import Dispatch
import Synchronization

/// Ends a command's process group, whether the worker stops it or its leader (the command) exits by itself.
///
/// A stop sends SIGTERM to the whole group at once and SIGKILL `killTimeout` seconds later: every member gets that
/// time to clean up, even when the leader dies first. The soft time limit sends SIGTERM only; the hard time limit
/// sends SIGKILL at once. When the leader exits without a stop, what it left running
/// in its group is killed at once: a task's processes end with the task (`setsid` starts one that must outlive it).
/// The leader is reaped only after the last signal, so its zombie keeps the group id from naming another group.
final class GroupEnding: Sendable {
    private let child: ChildProcess
    private let killTimeout: Double
    private struct Progress {
        var stops: Set<ExecProcess.Stop> = []
        var terminated = false
        var killScheduled = false
        var deadlinePassed = false
        var leaderHasEnded = false
    }
    private let progress = Mutex(Progress())

    /// The worker's exec groups this one belongs to (`ExecGroups.current` when it was made), if any.
    private let groups: ExecGroups?

    init(child: ChildProcess, killTimeout: Double) {
        self.child = child
        self.killTimeout = killTimeout
        groups = ExecGroups.current
        groups?.add(self)
    }

    /// Why the worker stopped the command, if it did.
    var reasons: Set<ExecProcess.Stop> { progress.withLock { $0.stops } }

    /// SIGTERM to the group now (once), SIGKILL `killTimeout` later (once); a soft time limit sends SIGTERM only.
    func stop(_ reason: ExecProcess.Stop) {
        let (terminate, scheduleKill) = progress.withLock { progress in
            progress.stops.insert(reason)
            let terminate = !progress.terminated
            progress.terminated = true
            let scheduleKill = reason != .softTimeLimit && !progress.killScheduled
            if scheduleKill { progress.killScheduled = true }
            return (terminate, scheduleKill)
        }
        if terminate { child.signalGroup(SIGTERM) }
        guard scheduleKill else { return }
        if groups?.killsAtOnce == true {
            deadline()
            return
        }
        Self.pending.withLock { $0[ObjectIdentifier(self)] = (self, ContinuousClock.now + .clampedSeconds(killTimeout)) }
        DispatchQueue.global().asyncAfter(deadline: .now() + killTimeout) { self.deadline() }
    }

    /// The hard time limit: SIGKILL to the group now, without waiting for `killTimeout`.
    func killNow(_ reason: ExecProcess.Stop) {
        progress.withLock {
            $0.stops.insert(reason)
            $0.killScheduled = true
        }
        deadline()
    }

    /// Stops whose SIGKILL is still to come, with when it comes.
    private static let pending = Mutex<[ObjectIdentifier: (ending: GroupEnding, at: ContinuousClock.Instant)]>([:])
    /// A cold shutdown of its worker: if the command was stopped, its group gets SIGKILL now instead of at the
    /// end of its `kill_timeout`.
    func killNowIfStopped() {
        let stopped = progress.withLock { $0.killScheduled && !$0.deadlinePassed }
        if stopped { deadline() }
    }

    /// Waits until every pending stop has sent its SIGKILL, so a worker that exits after a shutdown does not leave
    /// behind a group member that ignores SIGTERM.
    static func waitForPendingKills() async {
        while let last = pending.withLock({ $0.values.map(\.at).max() }) {
            try? await Task.sleep(until: max(last + .milliseconds(20), .now + .milliseconds(50)), clock: .continuous)
            if ContinuousClock.now > last + .seconds(1) {
                // A deadline that has not run a second late will not run (the dispatch queue is gone): stop waiting.
                pending.withLock { $0 = $0.filter { $0.value.at > last } }
            }
        }
    }

    /// The leader has exited (and is a zombie). Kills what is left of the group now, unless a stop's deadline is
    /// pending, which then kills it and reaps the leader. Returns whether the caller reaps the leader now.
    func leaderEnded() -> Bool {
        let deferred = progress.withLock {
            $0.leaderHasEnded = true
            return $0.killScheduled && !$0.deadlinePassed
        }
        if !deferred {
            child.signalGroup(SIGKILL)
            groups?.remove(self)
        }
        return !deferred
    }

    private func deadline() {
        let reap = progress.withLock {
            $0.deadlinePassed = true
            return $0.leaderHasEnded
        }
        child.signalGroup(SIGKILL)
        if reap { child.reap() }
        _ = Self.pending.withLock { $0.removeValue(forKey: ObjectIdentifier(self)) }
        groups?.remove(self)
    }
}

import Foundation

/// Ends a command's process group, whether the worker stops it or its leader (the command) exits by itself.
///
/// A stop sends SIGTERM to the whole group at once and SIGKILL `killTimeout` seconds later: every member gets that
/// time to clean up, even when the leader dies first. When the leader exits without a stop, what it left running
/// in its group is killed at once: a task's processes end with the task (`setsid` starts one that must outlive it).
/// The leader is reaped only after the last signal, so its zombie keeps the group id from naming another group.
final class GroupEnding: @unchecked Sendable {
    private let child: ChildProcess
    private let killTimeout: Double
    private let lock = NSLock()
    private var stops: Set<ExecProcess.Stop> = []
    private var deadlinePassed = false
    private var leaderHasEnded = false

    init(child: ChildProcess, killTimeout: Double) {
        self.child = child
        self.killTimeout = killTimeout
    }

    /// Why the worker stopped the command, if it did.
    var reasons: Set<ExecProcess.Stop> { lock.withLock { stops } }

    /// SIGTERM to the group now (on the first stop only), SIGKILL at the deadline.
    func stop(_ reason: ExecProcess.Stop) {
        let first = lock.withLock {
            defer { stops.insert(reason) }
            return stops.isEmpty
        }
        guard first else { return }
        child.signalGroup(SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + killTimeout) { self.deadline() }
    }

    /// The leader has exited (and is a zombie). Kills what is left of the group now, unless a stop's deadline is
    /// pending, which then kills it and reaps the leader. Returns whether the caller reaps the leader now.
    func leaderEnded() -> Bool {
        let deferred = lock.withLock {
            leaderHasEnded = true
            return !stops.isEmpty && !deadlinePassed
        }
        if !deferred { child.signalGroup(SIGKILL) }
        return !deferred
    }

    private func deadline() {
        let reap = lock.withLock {
            deadlinePassed = true
            return leaderHasEnded
        }
        child.signalGroup(SIGKILL)
        if reap { child.reap() }
    }
}

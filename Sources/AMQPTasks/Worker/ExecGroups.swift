import Synchronization

/// The exec commands one worker runs, so that its cold shutdown kills their process groups at once — and only its
/// own, not those of another worker in the same process. A worker makes it `current` (a task-local value) for
/// everything it runs; an `ExecProcess` started under it registers its `GroupEnding` here.
final class ExecGroups: Sendable {
    /// The groups of the worker whose task is running, if any.
    @TaskLocal static var current: ExecGroups?

    private struct State {
        var endings: [ObjectIdentifier: GroupEnding] = [:]
        var killAtOnce = false
    }

    private let state = Mutex(State())

    /// True once a cold shutdown began: a command stopped from now on gets SIGKILL at once, not after its
    /// `kill_timeout`.
    var killsAtOnce: Bool { state.withLock { $0.killAtOnce } }

    func add(_ ending: GroupEnding) { state.withLock { $0.endings[ObjectIdentifier(ending)] = ending } }

    func remove(_ ending: GroupEnding) { _ = state.withLock { $0.endings.removeValue(forKey: ObjectIdentifier(ending)) } }

    /// A cold shutdown: every command of this worker that was stopped gets its SIGKILL now, and every one stopped
    /// later gets it at once.
    func killAllNow() {
        let endings = state.withLock { state in
            state.killAtOnce = true
            return Array(state.endings.values)
        }
        for ending in endings { ending.killNowIfStopped() }
    }
}

import Synchronization

/// Whether a worker stopped to be restarted (abandoned handlers piled up) and why; one per worker.
///
/// A stop asked for by anyone else (warm or cold shutdown) comes first: abandoning handlers is what a shutdown
/// does, so a worker already stopping is not restarted for it.
final class RestartDecision: Sendable {
    private struct State {
        var reason: String?
        var stopping = false
        var ended = false
    }

    private let state = Mutex(State())

    /// The reason, once the worker decided to stop to be restarted.
    var reason: String? { state.withLock { $0.reason } }

    /// True once the worker's `run()` has returned.
    var hasEnded: Bool { state.withLock { $0.ended } }

    /// A shutdown began (or the restart's own stop): later decisions are ignored.
    func stopping() { state.withLock { $0.stopping = true } }

    /// Decides to restart for `reason`; false when the worker is stopping already.
    func decide(_ reason: String) -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            state.reason = reason
            return true
        }
    }

    func workerEnded() { state.withLock { $0.ended = true } }
}

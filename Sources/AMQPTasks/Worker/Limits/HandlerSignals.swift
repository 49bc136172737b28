import Synchronization

/// What the worker tells one running handler besides cancelling its task: that its soft time limit passed, that
/// its hard time limit passed, or that the worker stopped waiting for it (shutdown, `revoke --terminate`).
///
/// Swift cancellation says only "stop"; these say why, so `TaskContext.softTimeLimitExceeded` can answer and an exec
/// handler can send SIGTERM at the soft limit but SIGKILL at the hard one. Each handler run has its own (no state is
/// shared between runs or workers).
final class HandlerSignals: Sendable {
    enum Event: Sendable, Hashable {
        /// The soft limit passed: the handler's task is cancelled next, and may still return its own result.
        case softLimit
        /// The hard limit passed: the task fails with `TimeLimitExceeded`, whatever the handler does.
        case hardLimit
        /// The worker stopped waiting (shutdown past the grace period, `revoke --terminate`).
        case abandoned
    }

    private struct State {
        var events: Set<Event> = []
        var observers: [Int: @Sendable (Event) -> Void] = [:]
        var nextObserver = 0
    }

    private let state = Mutex(State())

    init() {}

    /// True once `event` was sent.
    func has(_ event: Event) -> Bool { state.withLock { $0.events.contains(event) } }

    /// Sends `event` (once) to every observer.
    func send(_ event: Event) {
        let observers: [@Sendable (Event) -> Void] = state.withLock { state in
            guard state.events.insert(event).inserted else { return [] }
            return Array(state.observers.values)
        }
        for observer in observers { observer(event) }
    }

    /// Calls `observer` for every event sent from now on, and at once for those sent before; returns the id that
    /// `stopObserving` takes.
    func observe(_ observer: @escaping @Sendable (Event) -> Void) -> Int {
        let (id, past) = state.withLock { state in
            let id = state.nextObserver
            state.nextObserver += 1
            state.observers[id] = observer
            return (id, state.events)
        }
        for event in [Event.softLimit, .hardLimit, .abandoned] where past.contains(event) { observer(event) }
        return id
    }

    func stopObserving(_ id: Int) { _ = state.withLock { $0.observers.removeValue(forKey: id) } }
}

import Synchronization

/// The tasks that consume a `TaskClient`'s reply queue: one per connection, the next started when its connection is
/// lost. The client owns them: `close()` cancels them and returns only once each has ended.
final class ResultReceivers: Sendable {
    private struct State {
        var running: [Int: Task<Void, Never>] = [:]
        var next = 0
        var stopped = false
    }
    private let state = Mutex(State())

    /// Starts `body` as a receiver; it is forgotten when it ends. After `stopAll()` nothing starts: a connection
    /// that was being opened while the client closed is closed by its opener, without a receiver.
    func start(_ body: @escaping @Sendable () async -> Void) {
        state.withLock { state in
            guard !state.stopped else { return }
            let token = state.next
            state.next += 1
            state.running[token] = Task {
                await body()
                self.state.withLock { _ = $0.running.removeValue(forKey: token) }
            }
        }
    }

    /// How many receivers have not ended yet.
    var runningCount: Int { state.withLock { $0.running.count } }

    /// Cancels every receiver and waits until each has ended; no receiver starts after it was called.
    func stopAll() async {
        while true {
            let running = state.withLock { state in
                state.stopped = true
                return Array(state.running.values)
            }
            if running.isEmpty { return }
            for task in running { task.cancel() }
            for task in running { await task.value }
        }
    }
}

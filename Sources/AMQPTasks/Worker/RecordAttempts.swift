import Synchronization

/// How many times this worker failed to record the outcome of each task, so a task whose outcome can never be
/// recorded (a `link` to a queue that does not exist, a reply queue that refuses every message, a result the broker
/// will not take) is given up after a few attempts instead of running again forever.
///
/// Bounded: it remembers at most `capacity` tasks and forgets the oldest first; a task is forgotten as soon as its
/// outcome is recorded. A task redelivered to another worker starts counting anew there, so each worker tries it at
/// most `WorkerConfiguration.recordAttempts` times: still bounded.
final class RecordAttempts: Sendable {
    private let capacity: Int
    private let state = Mutex(State())

    private struct State {
        var counts: [String: Int] = [:]
        var lastErrors: [String: String] = [:]
        var order: [String] = []
        var head = 0
    }

    init(capacity: Int = 10_000) { self.capacity = capacity }

    /// Counts `count` more failed attempts for `key` (one, or all of them for an error that cannot go away), and
    /// remembers what went wrong; returns how many failed so far.
    func failed(_ key: String, error: String? = nil, _ count: Int = 1) -> Int {
        state.withLock { state in
            if let error { state.lastErrors[key] = String(error.prefix(2000)) }
            if let known = state.counts[key] {
                state.counts[key] = known + count
                return known + count
            }
            if state.counts.count >= capacity { evictOldest(&state) }
            state.counts[key] = count
            state.order.append(key)
            if state.order.count - state.head > 2 * capacity {
                // Keys recorded since were left in the order: drop them so it stays bounded too.
                state.order = state.order[state.head...].filter { state.counts[$0] != nil }
                state.head = 0
            }
            return count
        }
    }

    /// What went wrong the last time for `key`.
    func lastError(of key: String) -> String? { state.withLock { $0.lastErrors[key] } }

    /// Forgets `key` (its outcome is recorded).
    func recorded(_ key: String) {
        state.withLock { state in
            guard !state.counts.isEmpty else { return }
            state.counts[key] = nil
            state.lastErrors[key] = nil
        }
    }

    /// How many attempts for `key` failed so far.
    func failures(of key: String) -> Int { state.withLock { $0.counts[key] ?? 0 } }

    /// How many tasks are remembered (for tests).
    var count: Int { state.withLock { $0.counts.count } }

    private func evictOldest(_ state: inout State) {
        while state.head < state.order.count {
            let key = state.order[state.head]
            state.head += 1
            state.lastErrors[key] = nil
            if state.counts.removeValue(forKey: key) != nil { break }
        }
        if state.head > 1024, state.head * 2 > state.order.count {
            state.order.removeFirst(state.head)
            state.head = 0
        }
    }
}

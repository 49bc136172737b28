import AMQP
import Synchronization

/// Watches the task one consumer slot runs, and takes it into custody (then renews its copy) when it has held a
/// delivery for half the broker's `consumer_timeout` (`CustodySchedule`). One per slot channel, looking every
/// `CustodySchedule.lookInterval`: a task costs a lock, not a timer.
///
/// A task is never settled while a custody step on it is under way: `end()` waits for the step to finish.
final class CustodyWatch: Sendable {
    private let custody: TaskCustody
    private let channel: Channel
    private let state = Mutex(State())
    private let looking: Mutex<Task<Void, Never>?> = Mutex(nil)

    private struct State {
        var running: Running?
        /// A step on `running` is under way; `end()` callers wait for it.
        var stepping = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private struct Running {
        let hold: TaskHold
        let received: ReceivedMessage
        let key: String
        /// When the delivery that holds the task now (its own, or its latest copy) was taken.
        var heldSince: ContinuousClock.Instant
        /// Custody cannot help this run any more (its channel closed first).
        var gaveUp = false
    }

    init(_ custody: TaskCustody, channel: Channel) {
        self.custody = custody
        self.channel = channel
    }

    /// Starts looking; `stop()` ends it.
    func start() {
        let task = Task { [self] in await look() }
        looking.withLock { $0 = task }
    }

    /// Stops looking (the slot's consumer ended).
    func stop() {
        looking.withLock { $0?.cancel() }
    }

    /// The slot runs `hold`'s task from now on.
    func begin(_ hold: TaskHold, _ received: ReceivedMessage, key: String) {
        state.withLock { $0.running = Running(hold: hold, received: received, key: key, heldSince: .now) }
    }

    /// The slot's task ended: no more custody steps on it; returns once any step under way finished.
    func end() async {
        await withCheckedContinuation { continuation in
            let mustWait = state.withLock { state in
                state.running = nil
                if state.stepping { state.waiters.append(continuation) }
                return state.stepping
            }
            if !mustWait { continuation.resume() }
        }
    }

    private func look() async {
        let schedule = custody.schedule
        while !Task.isCancelled {
            do { try await Task.sleep(for: schedule.lookInterval) } catch { return }
            let due: Running? = state.withLock { state in
                guard let running = state.running, !running.gaveUp,
                    schedule.isDue(heldSince: running.heldSince, now: .now)
                else { return nil }
                state.stepping = true
                return running
            }
            guard let due else { continue }
            // Not cancelled with the watch: a step under way always finishes, so the holder is never half-changed.
            let result = await Task { [custody, channel] in
                await custody.step(due.hold, due.received, channel: channel, key: due.key)
            }.value
            let waiters = state.withLock { state in
                if state.running?.hold === due.hold {
                    switch result {
                    case .done: state.running?.heldSince = .now
                    case .failed: break
                    case .tooLate: state.running?.gaveUp = true
                    }
                }
                state.stepping = false
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }
}

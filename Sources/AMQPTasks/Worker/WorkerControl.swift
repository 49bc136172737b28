import AMQP
import Foundation

/// Shutdown coordination: the consumers to cancel, the grace period, the pause between reconnects.
actor WorkerControl {
    private(set) var isStopping = false
    /// True once a cold shutdown began (`Worker.shutdownNow()`).
    private(set) var isCold = false
    private var consumers: [Consumer] = []
    private var slots: Task<Void, Error>?
    private var gracePeriod: Double = 30
    private var sleepers: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextSleeper = 0

    /// Remembers a consumer so a stop can cancel it; false when a stop already began.
    func register(_ consumer: Consumer) async -> Bool {
        if isStopping {
            try? await consumer.cancel()
            return false
        }
        consumers.append(consumer)
        return true
    }

    /// Forgets a consumer that ended.
    func unregister(_ consumer: Consumer) {
        consumers.removeAll { $0.tag == consumer.tag }
    }

    /// Forgets the consumers of a lost connection, before a new one starts its own.
    func reset() { consumers.removeAll() }

    func track(_ slots: Task<Void, Error>, gracePeriod: Double) {
        self.slots = slots
        self.gracePeriod = gracePeriod
    }

    /// A cold shutdown: a stop whose grace period ends now. Running tasks are interrupted and requeued.
    func stopNow() async {
        isCold = true
        await stop()
        slots?.cancel()
    }

    func stop() async {
        guard !isStopping else { return }
        isStopping = true
        for sleeper in sleepers.values { sleeper.resume() }
        sleepers.removeAll()
        for consumer in consumers { try? await consumer.cancel() }
        guard let slots else { return }
        let grace = gracePeriod
        Task {
            try? await Task.sleep(for: .clampedSeconds(grace))
            slots.cancel()
        }
    }

    /// Sleeps, but wakes at once when a stop begins. Any number of tasks may sleep at once.
    func sleep(seconds: Double) async throws {
        guard !isStopping else { return }
        let id = nextSleeper
        nextSleeper += 1
        let timer = Task {
            try await Task.sleep(for: .clampedSeconds(seconds))
            self.wake(id)
        }
        // A cancelled sleeper (its connection was lost, so its task group ends) wakes at once too.
        await withTaskCancellationHandler {
            await withCheckedContinuation { sleepers[id] = $0 }
        } onCancel: {
            timer.cancel()
            Task { await self.wake(id) }
        }
        timer.cancel()
    }

    private func wake(_ id: Int) {
        sleepers.removeValue(forKey: id)?.resume()
    }
}

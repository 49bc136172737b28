import AMQP
import FoundationEssentials

/// Shutdown coordination: the consumers to cancel, the grace period, the pause between reconnects.
actor WorkerControl {
    private(set) var isStopping = false
    /// True once a cold shutdown began (`Worker.shutdownNow()`).
    private(set) var isCold = false
    private var consumers: [Consumer] = []
    private var slots: Task<Void, Error>?
    private var slotsHaveEnded = false
    private var slotsWaiter: CheckedContinuation<Void, Never>?
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

    /// Remembers the consumers' slots so a stop can interrupt them after the grace period. A stop that began
    /// before (while they were being set up) applies to them at once.
    func track(_ slots: Task<Void, Error>, gracePeriod: Double) {
        self.slots = slots
        self.gracePeriod = gracePeriod
        slotsHaveEnded = false
        if isCold {
            slots.cancel()
        } else if isStopping {
            endGrace(of: slots, after: gracePeriod)
        }
    }

    /// Returns once the tracked slots have ended, or at once when a cold shutdown begins: a cold shutdown does not
    /// wait for what does not stop (a middleware hook that hangs, a handler that ignores cancellation). True when
    /// the slots ended.
    func waitForSlots() async -> Bool {
        if !slotsHaveEnded && !isCold {
            await withCheckedContinuation { slotsWaiter = $0 }
        }
        return slotsHaveEnded
    }

    /// The tracked slots have ended.
    func slotsEnded() {
        slotsHaveEnded = true
        slotsWaiter?.resume()
        slotsWaiter = nil
    }

    /// A cold shutdown: a stop whose grace period ends now. Running tasks are interrupted and requeued.
    func stopNow() async {
        isCold = true
        await stop()
        slots?.cancel()
        slotsWaiter?.resume()
        slotsWaiter = nil
    }

    func stop() async {
        guard !isStopping else { return }
        isStopping = true
        for sleeper in sleepers.values { sleeper.resume() }
        sleepers.removeAll()
        for consumer in consumers { try? await consumer.cancel() }
        if let slots { endGrace(of: slots, after: gracePeriod) }
    }

    private nonisolated func endGrace(of slots: Task<Void, Error>, after grace: Double) {
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

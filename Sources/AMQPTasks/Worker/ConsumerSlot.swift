import AMQP
import Synchronization

/// One consumer slot of a queue: a consumer on its own channel (`SlotChannel`), running one task at a time. A slot
/// told to retire (`pool_shrink`, `cancel_consumer`, autoscale) cancels its consumer, finishes the task it runs (its
/// outcome recorded and acknowledged), then closes its channel and ends: it never drops or requeues a running task.
final class ConsumerSlot: Sendable, Identifiable {
    private struct State {
        var retiring = false
        var busy = false
        var consumer: Consumer?
    }
    /// The queue this slot consumes.
    let queue: String
    let id: Int
    private let state = Mutex(State())

    init(queue: String, id: Int) {
        self.queue = queue
        self.id = id
    }

    /// True once the slot was told to retire: it takes no new task.
    var isRetiring: Bool { state.withLock { $0.retiring } }

    /// True while the slot runs a task.
    var isBusy: Bool { state.withLock { $0.busy } }

    /// Marks whether the slot runs a task now.
    func setBusy(_ busy: Bool) { state.withLock { $0.busy = busy } }

    /// Remembers the slot's consumer, so a retirement can cancel it; false (and the consumer is to be cancelled by
    /// the caller) when the slot is retiring already.
    func attach(_ consumer: Consumer) -> Bool {
        state.withLock {
            guard !$0.retiring else { return false }
            $0.consumer = consumer
            return true
        }
    }

    /// True while the slot has a consumer (so a channel): false before its first consumer started, and while it
    /// waits to start another.
    var hasConsumer: Bool { state.withLock { $0.consumer != nil } }

    /// Forgets the slot's consumer, which ended.
    func detach() { state.withLock { $0.consumer = nil } }

    /// Tells the slot to take no more tasks: its consumer is cancelled (the task it runs goes on to its end).
    func retire() async {
        let consumer = state.withLock {
            $0.retiring = true
            return $0.consumer
        }
        try? await consumer?.cancel()
    }
}

import AMQP
import Logging
import Synchronization

/// The one delivery that holds a running task's message in the broker, settled once when the task ends: the task's
/// own delivery, or, once the task is in custody (`TaskCustody`), the copy this worker holds in its custody queue.
///
/// A redelivery of the same message to this worker while the task runs (its first channel was closed, so the broker
/// requeued it) is not run again: its slot waits here (`waitForSettlement`) and settles that delivery as the task's
/// was settled, on its own, open channel.
final class TaskHold: Sendable {
    /// How a task's delivery was settled.
    enum Settlement: Sendable, Equatable {
        /// The outcome is recorded: acknowledged.
        case acknowledged
        /// Not recorded (shutdown, or recording failed): back to its queue, to run again.
        case requeued
    }

    /// What holds the message now.
    enum Holder: Sendable {
        /// The task's delivery from its queue.
        case delivery(Delivery)
        /// A copy in this worker's custody queue; the task's delivery was acknowledged.
        case custody(Delivery)
    }

    private struct State {
        var holder: Holder
        var settlement: Settlement?
        var waiters: [CheckedContinuation<Settlement, Never>] = []
    }

    private let state: Mutex<State>

    init(_ delivery: Delivery) { state = Mutex(State(holder: .delivery(delivery))) }

    var holder: Holder { state.withLock { $0.holder } }

    /// True once the task is in custody.
    var isInCustody: Bool {
        if case .custody = holder { return true }
        return false
    }

    /// The task is now held by `copy` (in custody); returns what held it before. Only `TaskCustody` calls it,
    /// never while the task is being settled.
    func hand(to copy: Delivery) -> Holder {
        state.withLock { state in
            let before = state.holder
            state.holder = .custody(copy)
            return before
        }
    }

    /// Acknowledges whatever holds the task (its outcome is recorded).
    func acknowledge() {
        switch holder {
        case .delivery(let delivery): delivery.sendAck()
        case .custody(let copy): copy.sendAck()
        }
        settle(.acknowledged)
    }

    /// Sends the task back to its queue to run again: its delivery is requeued; a custody copy is rejected, which
    /// dead-letters it to the task's queue at once.
    func requeue() async {
        switch holder {
        case .delivery(let delivery): try? await delivery.nack(requeue: true)
        case .custody(let copy): try? await copy.reject(requeue: false)
        }
        settle(.requeued)
    }

    /// Waits until the task is settled; returns how.
    func waitForSettlement() async -> Settlement {
        await withCheckedContinuation { continuation in
            let done: Settlement? = state.withLock { state in
                if let settled = state.settlement { return settled }
                state.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    private func settle(_ settlement: Settlement) {
        let waiters = state.withLock { state in
            state.settlement = settlement
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: settlement) }
    }
}

import AMQP
import Synchronization

/// Keeps a worker's `WorkerStatus` up to date, per worker (never process-global: several workers share a process in
/// tests and applications).
final class WorkerStatusTracker: Sendable {
    private struct Current {
        var connection: Connection?
        var consumers: [String: Int] = [:]
    }
    private let current = Mutex(Current())

    /// The status, for the queues the worker consumes now (`ConsumerSlots`: configured, added, minus cancelled).
    func status(queues: [String]) -> WorkerStatus {
        current.withLock {
            WorkerStatus(
                connected: $0.connection?.isOpen ?? false, queues: queues,
                consumers: $0.consumers.filter { queues.contains($0.key) })
        }
    }

    /// The connection the worker serves now (nil between connections).
    func setConnection(_ connection: Connection?) { current.withLock { $0.connection = connection } }

    /// A consumer slot of `queue` started consuming.
    func consumerStarted(_ queue: String) { current.withLock { $0.consumers[queue, default: 0] += 1 } }

    /// A consumer slot of `queue` stopped consuming.
    func consumerEnded(_ queue: String) {
        current.withLock { $0.consumers[queue] = max(0, ($0.consumers[queue] ?? 0) - 1) }
    }
}

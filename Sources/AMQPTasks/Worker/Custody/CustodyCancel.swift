import AMQP
import Synchronization

/// Cancels a slot's consumer when its task goes into custody, once, and remembers that it did: the slot then starts
/// a new consumer when the task ended, instead of taking the end of the consumer for a lost one.
final class CustodyCancel: Sendable {
    private let consumer: Consumer
    private let done = Mutex(false)

    init(_ consumer: Consumer) { self.consumer = consumer }

    /// True once the consumer was cancelled for custody.
    var happened: Bool { done.withLock { $0 } }

    func cancel() async {
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        if first { try? await consumer.cancel() }
    }
}

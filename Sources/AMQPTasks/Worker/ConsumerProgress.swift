import Synchronization

/// How many deliveries one consumer slot processed on its current channel.
final class ConsumerProgress: Sendable {
    private let count = Mutex(0)

    var processed: Int { count.withLock { $0 } }

    func processedOne() { count.withLock { $0 += 1 } }
}

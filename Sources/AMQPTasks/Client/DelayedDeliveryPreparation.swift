import Synchronization

/// What one client connection declared for delayed tasks: the delay levels, and the queues it bound to
/// `celery_delayed_delivery`. Each is declared once per connection, before the first delayed task that needs it.
final class DelayedDeliveryPreparation: Sendable {
    private struct State {
        var levelsDeclared = false
        var boundQueues: Set<String> = []
    }

    private let state = Mutex(State())

    var levelsDeclared: Bool { state.withLock { $0.levelsDeclared } }

    func markLevelsDeclared() { state.withLock { $0.levelsDeclared = true } }

    func isBound(_ queue: String) -> Bool { state.withLock { $0.boundQueues.contains(queue) } }

    func markBound(_ queue: String) { _ = state.withLock { $0.boundQueues.insert(queue) } }
}

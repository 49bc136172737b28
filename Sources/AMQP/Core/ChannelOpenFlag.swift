import Synchronization

/// Whether a consumer's channel is still open, readable from any thread.
final class ChannelOpenFlag: Sendable {
    private let open = Atomic<Bool>(true)
    var isOpen: Bool { open.load(ordering: .acquiring) }
    func close() { open.store(false, ordering: .releasing) }
}

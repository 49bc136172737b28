import Synchronization
/// What the I/O thread knows about one open channel: publisher-confirm bookkeeping and its consumers.
/// I/O thread only.
final class ChannelState {
    let id: UInt16
    /// Tells this opening of channel `id` from earlier ones that had the same number: deliveries remember it, so a
    /// late ack for a delivery of a closed channel is never sent on a new channel that reuses the number (the
    /// broker would answer 406 "unknown delivery tag" and close the new channel).
    let generation: UInt64
    /// True after `confirm.select`: every publish then waits for the broker's `basic.ack`/`basic.nack`.
    var confirmMode = false
    /// The broker numbers publishes on a confirm channel 1, 2, 3…; this is the number the next one gets.
    var nextPublishSequence: UInt64 = 1
    var pendingConfirms = PendingConfirms()
    var consumerTags: Set<String> = []

    init(id: UInt16, generation: UInt64) {
        self.id = id
        self.generation = generation
    }

    /// Fails every publish that still waits for its confirm.
    func fail(with error: AMQPError) {
        pendingConfirms.failAll(error)
    }
}

/// One publish that waits for its confirm.
struct PendingConfirm {
    let exchange: String
    let routingKey: String
    let mandatory: Bool
    /// Set when a `basic.return` was matched to this publish; reported when its confirm arrives.
    var returned: AMQPError?
    let completion: (Result<Void, AMQPError>) -> Void
}

/// Publishes waiting for confirms, indexed by sequence number in O(1).
///
/// Sequence numbers on a channel are consecutive, so the entry for number `n` sits at `n - firstSequence`;
/// `basic.ack` with `multiple` resolves a prefix. Resolved entries become nil and the prefix is dropped in bulk.
struct PendingConfirms {
    private var entries: [PendingConfirm?] = []
    private var head = 0
    private var firstSequence: UInt64 = 1

    var isEmpty: Bool { head == entries.count }

    mutating func append(_ confirm: PendingConfirm, sequence: UInt64) {
        if isEmpty {
            entries.removeAll(keepingCapacity: true)
            head = 0
            firstSequence = sequence
        }
        entries.append(confirm)
    }

    /// Resolves publish `tag` (and, with `multiple`, all before it) as acked (`nack == nil`) or nacked.
    mutating func resolve(upTo tag: UInt64, multiple: Bool, nack: AMQPError?) {
        guard tag >= firstSequence else { return }
        let last = Int(tag - firstSequence)
        guard last < entries.count else { return }
        let range = multiple ? head...last : last...last
        for index in range where index >= head {
            guard let entry = entries[index] else { continue }
            entries[index] = nil
            if let returned = entry.returned {
                entry.completion(.failure(returned))
            } else if let nack {
                entry.completion(.failure(nack))
            } else {
                entry.completion(.success(()))
            }
        }
        while head < entries.count, entries[head] == nil { head += 1 }
        if head > 4096, head * 2 > entries.count {
            entries.removeFirst(head)
            firstSequence += UInt64(head)
            head = 0
        }
    }

    /// Marks the oldest waiting mandatory publish to `exchange`/`routingKey` as returned.
    ///
    /// `basic.return` carries no sequence number. RabbitMQ sends it before the confirm of the same message and in
    /// publish order, so the oldest unconfirmed, not yet returned mandatory publish with the same exchange and
    /// routing key is the one returned.
    mutating func markReturned(exchange: String, routingKey: String, error: AMQPError) -> Bool {
        for index in head..<entries.count {
            guard var entry = entries[index], entry.mandatory, entry.returned == nil,
                entry.exchange == exchange, entry.routingKey == routingKey
            else { continue }
            entry.returned = error
            entries[index] = entry
            return true
        }
        return false
    }

    mutating func failAll(_ error: AMQPError) {
        let waiting = entries[head...].compactMap { $0 }
        entries.removeAll()
        head = 0
        for entry in waiting { entry.completion(.failure(error)) }
    }
}

/// Where a consumer's deliveries go: the continuation of the consumer's `AsyncThrowingStream`.
struct ConsumerSink {
    let continuation: AsyncThrowingStream<Delivery, Error>.Continuation
    let channelOpen: ChannelOpenFlag

    /// The channel closed (or the connection was lost): deliveries still in the stream were requeued by the broker.
    func channelClosed() { channelOpen.close() }

    func yield(_ delivery: Delivery) { continuation.yield(delivery) }

    /// Ends the stream: normally (`nil`) or with the error that ended the consumer.
    func finish(_ error: AMQPError?) {
        if let error { continuation.finish(throwing: error) } else { continuation.finish() }
    }
}

/// Whether a consumer's channel is still open, readable from any thread.
final class ChannelOpenFlag: Sendable {
    private let open = Atomic<Bool>(true)
    var isOpen: Bool { open.load(ordering: .acquiring) }
    func close() { open.store(false, ordering: .releasing) }
}

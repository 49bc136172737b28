/// What the I/O thread knows about one open channel: publisher-confirm bookkeeping and its consumers.
/// I/O thread only: reachable only through `ConnectionCore.io`, which checks the thread, and not `Sendable`.
final class ChannelState {
    let id: UInt16
    /// Tells this opening of channel `id` from earlier ones that had the same number: deliveries remember it, so a
    /// late ack for a delivery of a closed channel is never sent on a new channel that reuses the number (the
    /// broker would answer 406 "unknown delivery tag" and close the new channel).
    let generation: UInt64
    /// Confirms or transactions once selected (AMQP allows a channel one of them at most), nil before.
    var publishingMode: PublishingMode?
    /// True after `confirm.select`: every publish then waits for the broker's `basic.ack`/`basic.nack`.
    var confirmMode: Bool { publishingMode == .confirms }
    /// True after `tx.select`: publishes and acknowledgements wait for `tx.commit`.
    var transactional: Bool { publishingMode == .transactions }
    /// On a transactional channel, the mandatory publishes the broker returned as unroutable since the last
    /// commit or rollback (RabbitMQ routes a transaction's publishes at `tx.commit`, and returns before `commit-ok`).
    var returnedInTransaction: [AMQPError] = []
    /// The broker numbers publishes on a confirm channel 1, 2, 3…; this is the number the next one gets.
    var nextPublishSequence: UInt64 = 1
    var pendingConfirms = PendingConfirms()
    var consumerTags: Set<String> = []
    /// False once this channel closed (by either side) or its connection was lost; readable from any thread.
    let open = ChannelOpenFlag()

    init(id: UInt16, generation: UInt64) {
        self.id = id
        self.generation = generation
    }

    /// Fails every publish that still waits for its confirm.
    func fail(with error: AMQPError) {
        pendingConfirms.failAll(error)
    }
}

/// How a channel's publishes are made safe: AMQP lets a channel select one of these, once.
enum PublishingMode: Equatable {
    /// `confirm.select`: the broker confirms each publish (`basic.ack`/`basic.nack`).
    case confirms
    /// `tx.select`: publishes and acknowledgements wait for `tx.commit`.
    case transactions

    /// The method that selects it.
    var method: String { self == .confirms ? "confirm.select" : "tx.select" }
    /// What a channel in this mode is, for errors.
    var state: String { self == .confirms ? "in confirm mode" : "transactional" }
    /// What this mode allows, for errors.
    var allows: String { self == .confirms ? "confirms" : "transactions" }
}

/// The deliveries of one consumer (`basic.consume` with manual acknowledgements), as an async sequence.
///
/// ```swift
/// for try await delivery in consumer {
///     try await handle(delivery)
///     try await delivery.ack()
/// }
/// ```
/// The sequence ends normally after `cancel()` or when the connection is closed by the application, and throws
/// when the broker cancels the consumer (`.consumerCancelledByServer`) or the connection or channel is lost.
public struct Consumer: AsyncSequence, Sendable {
    public typealias Element = Delivery

    /// The consumer tag the broker knows this consumer by.
    public let tag: String
    let channel: Channel
    let stream: AsyncThrowingStream<Delivery, Error>
    let channelOpen: ChannelOpenFlag

    /// False once the consumer's channel closed or its connection was lost: the broker has then requeued every
    /// unacknowledged delivery, including those still waiting in this sequence, so they should be skipped, not run.
    /// (After `cancel()` the channel stays open and buffered deliveries must still be settled.)
    public var channelIsOpen: Bool { channelOpen.isOpen }

    /// Stops deliveries (`basic.cancel`). Deliveries already received stay in the sequence and must be settled;
    /// any that arrive after the cancel are returned to the queue.
    public func cancel() async throws {
        try await channel.cancel(consumerTag: tag)
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<Delivery, Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }
}

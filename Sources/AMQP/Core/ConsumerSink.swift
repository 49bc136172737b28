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

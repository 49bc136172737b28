import CRabbitMQ

/// What only a connection's I/O thread touches: rabbitmq-c's connection, the C arena, the open channels and
/// consumers. `ConnectionCore.io` hands it out after checking the thread, and nothing here is `Sendable`, so
/// neither it nor the `ChannelState`s and `CArena` it holds can be passed to another thread.
final class ConnectionIOState {
    /// rabbitmq-c's connection; nil before the login and after the teardown.
    var connection: amqp_connection_state_t?
    let arena = CArena()
    var channels: [UInt16: ChannelState] = [:]
    var consumers: [String: ConsumerSink] = [:]
    var channelIDs = ChannelIDs()
    /// Counts channel openings; see `ChannelState.generation`.
    var channelGenerations: UInt64 = 0
    /// The frame size negotiated with the broker: the largest frame this connection may send. rabbitmq-c's own
    /// limit, on the frames it accepts, is larger on a connection that consumes (`ConsumingFrameHeadroom`).
    var frameMax = 0
    /// True once the connection failed or was closed: the loop ends.
    var isDead = false
}

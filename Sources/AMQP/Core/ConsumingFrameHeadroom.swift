import CRabbitMQ

/// AMQP never splits a message's content header (its properties and headers), and RabbitMQ delivers it in one frame
/// whatever the consumer's frame size. A message dead-lettered on its way (a TTL or delay queue, a rejected task)
/// comes out with headers the broker added (`x-death`, one entry per queue it passed through; `x-first-death-*`),
/// so a message whose properties filled its publisher's frame at the broker's frame size arrives larger than any
/// connection may negotiate. rabbitmq-c drops a connection that receives a frame larger than its own frame size,
/// and the broker redelivers the message to the next one: a loop in which it is never handled.
///
/// So a connection that consumes accepts frames `consumingFrameHeadroom` bytes larger than the negotiated size
/// (rabbitmq-c's own frame size is raised after the login), while it still sends frames of the negotiated size only
/// (`ConnectionIOState.frameMax`: the size checks, and the body cut into frames by `amqp_tasks_basic_publish`).
extension ConnectionCore {
    /// How much larger than the negotiated frame size a consuming connection accepts: room for the `x-death`
    /// entries of the 28 levels of native delayed delivery (some 250 bytes each) many times over.
    static let consumingFrameHeadroom = 65_536

    /// A frame's header (type, channel, size: 7 bytes) and end (1): a body frame holds `frame_max` less these.
    static let frameHeaderAndEnd = 8

    /// How much more than it proposes a connection opened with `configuration` may receive.
    static func receiveHeadroom(_ configuration: ConnectionConfiguration) -> Int {
        configuration.consumes ? consumingFrameHeadroom : 0
    }

    /// Raises rabbitmq-c's frame size, which limits the frames it accepts, above the negotiated one (kept in
    /// `io.frameMax` for what this connection sends).
    func acceptFramesLargerThanNegotiated() throws {
        let status = amqp_tune_connection(
            state, amqp_get_channel_max(state), Int32(io.frameMax + Self.consumingFrameHeadroom),
            amqp_get_heartbeat(state))
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.libraryFailure(status, operation: "connection.tune (accept frames larger than frame_max)")
        }
    }
}

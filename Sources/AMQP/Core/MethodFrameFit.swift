import CRabbitMQ

/// A method frame (a declare, bind or consume with its arguments table) must fit in one frame of the negotiated
/// `frame_max`: AMQP never splits a method. rabbitmq-c finds out while encoding it (`AMQP_STATUS_TABLE_TOO_BIG`),
/// before writing anything, but that comes back as a library failure of the whole call, which
/// `ConnectionCore.check` takes for a broken connection and closes it. Refusing the one method first keeps the
/// connection.
extension ConnectionCore {
    /// What a method frame holds besides its short strings and arguments table: the frame header (7 bytes), the
    /// class and method ids (4), the reserved ticket (2), one octet of flags (1) and the frame end (1).
    static let methodFrameOverhead = 15

    /// Throws `.invalidArgument` (nothing sent) when a method carrying the short strings `names` and `arguments`
    /// does not fit in one frame. Its size (`FieldTable.encodedSize`) is rabbitmq-c's encoding's.
    func checkMethodFits(_ operation: String, names: [String], arguments: FieldTable) throws {
        guard !arguments.isEmpty else { return }  // a few short strings always fit in frame_max's 4,096 minimum
        let size = Self.methodFrameOverhead + names.reduce(0) { $0 + 1 + $1.utf8.count } + arguments.encodedSize
        let frameMax = io.frameMax  // negotiated: rabbitmq-c's may be larger (`ConsumingFrameHeadroom`)
        guard size > frameMax else { return }
        throw AMQPError(
            .invalidArgument, operation: operation,
            message: "the method's arguments do not fit in one frame of the negotiated frame size (frame_max "
                + "\(frameMax) bytes; this \(operation) takes \(size) bytes, of which its arguments table "
                + "\(arguments.encodedSize))",
            hint: "nothing was sent and the connection stays open; use fewer or smaller arguments, or connect with a "
                + "larger frame_max (URL option ?frame_max=, up to the broker's frame_max)")
    }
}

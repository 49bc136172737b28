import CRabbitMQ

/// The one error type of the AMQP wrapper: what happened, which AMQP operation caused it, and what to do.
///
/// It keeps the codes of the layer that produced it, as GRDB's `DatabaseError` keeps SQLite's: the rabbitmq-c
/// status (`libraryStatus`, e.g. `AMQP_STATUS_SOCKET_ERROR`) for client-side failures, or the server's reply code
/// (`replyCode`, e.g. 404 NOT_FOUND) when the broker closed a channel or the connection or returned a message.
public struct AMQPError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Whether the channel or connection is still usable follows from it.
    public enum Kind: Sendable, Hashable {
        /// rabbitmq-c reported a failure (socket error, timeout, bad frame); the connection is unusable.
        case library
        /// The broker closed the connection (`connection.close`), e.g. 403 on login, 320 when forced, 530 on vhost.
        case connectionClosedByServer
        /// The broker closed the channel (`channel.close`), e.g. 404, 406, 403. Open a new channel to go on.
        case channelClosedByServer
        /// The connection or channel was closed earlier; the operation was not attempted or cannot complete.
        case closed
        /// A `mandatory` publish could not be routed to any queue and the broker returned it (`basic.return`).
        case unroutable
        /// The broker refused to take responsibility for a published message (`basic.nack`).
        case nacked
        /// The broker cancelled a consumer (`basic.cancel`), e.g. because its queue was deleted.
        case consumerCancelledByServer
        /// The broker did not answer in time.
        case timeout
        /// A URL, option or argument given by the caller is not valid; nothing was sent.
        case invalidArgument
    }

    public var kind: Kind
    /// The AMQP operation that failed, e.g. `queue.declare`, `basic.publish`, `connection.open`.
    public var operation: String
    /// The server's reply code, for `connectionClosedByServer`, `channelClosedByServer` and `unroutable`.
    public var replyCode: ReplyCode?
    /// The rabbitmq-c status code (`amqp_status_enum`), for `library` errors.
    public var libraryStatus: Int32?
    /// What the server or the library said, e.g. `NOT_FOUND - no exchange 'x' in vhost '/'`.
    public var message: String
    /// What the caller can do about it, where there is something useful to say.
    public var hint: String?

    public init(
        _ kind: Kind, operation: String, message: String, replyCode: ReplyCode? = nil,
        libraryStatus: Int32? = nil, hint: String? = nil
    ) {
        self.kind = kind
        self.operation = operation
        self.message = message
        self.replyCode = replyCode
        self.libraryStatus = libraryStatus
        self.hint = hint
    }

    /// A client-side failure reported by rabbitmq-c with the given status.
    static func library(_ status: Int32, operation: String, hint: String? = nil) -> AMQPError {
        let text = String(cString: amqp_error_string2(status))
        return AMQPError(.library, operation: operation, message: text, libraryStatus: status, hint: hint)
    }

    /// True when only the channel is lost: the connection still works and a new channel can be opened.
    public var isChannelLevel: Bool { kind == .channelClosedByServer }

    public var description: String {
        var text = "\(operation) failed: "
        switch kind {
        case .connectionClosedByServer:
            text += "the broker closed the connection with \(replyCode.map(\.description) ?? "?"): \(message)"
        case .channelClosedByServer:
            text += "the broker closed the channel with \(replyCode.map(\.description) ?? "?"): \(message)"
        case .unroutable:
            text += "the broker returned the message as unroutable (\(replyCode.map(\.description) ?? "?")): \(message)"
        case .library:
            text += message
        default:
            text += message
        }
        if let hint { text += " (\(hint))" }
        return text
    }
}

import CRabbitMQ

/// The one error type of the AMQP wrapper: what happened, which AMQP operation caused it, and what to do.
///
/// It keeps the codes of the layer that produced it, as GRDB's `DatabaseError` keeps SQLite's: its `kind` (a
/// `Code`), the rabbitmq-c status (`libraryStatus`, e.g. `AMQP_STATUS_SOCKET_ERROR`) for client-side failures, or
/// the server's reply code (`replyCode`, e.g. 404 NOT_FOUND) and the method it refused (`failedMethod`) when the
/// broker closed a channel or the connection or returned a message.
///
/// Catch by kind or by reply code, whichever says what you mean:
///
///     do { try await channel.inspectQueue("jobs") }
///     catch AMQPError.notFound { … }        // the broker answered 404 NOT_FOUND
///     catch AMQPError.closed { … }          // the channel or connection was closed before
public struct AMQPError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Whether the channel or connection is still usable follows from it.
    ///
    /// A struct rather than an enum, as GRDB's `ResultCode`, so that a kind added later breaks no `switch`.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// rabbitmq-c reported a failure (socket error, timeout, bad frame); the connection is unusable.
        public static let library = Code(rawValue: "library")
        /// The broker closed the connection (`connection.close`), e.g. 403 on login, 320 when forced, 530 on vhost.
        public static let connectionClosedByServer = Code(rawValue: "connectionClosedByServer")
        /// The broker closed the channel (`channel.close`), e.g. 404, 406, 403. Open a new channel to go on.
        public static let channelClosedByServer = Code(rawValue: "channelClosedByServer")
        /// The connection or channel was closed earlier; the operation was not attempted or cannot complete.
        public static let closed = Code(rawValue: "closed")
        /// A `mandatory` publish could not be routed to any queue and the broker returned it (`basic.return`).
        public static let unroutable = Code(rawValue: "unroutable")
        /// The broker refused to take responsibility for a published message (`basic.nack`).
        public static let nacked = Code(rawValue: "nacked")
        /// The broker cancelled a consumer (`basic.cancel`), e.g. because its queue was deleted.
        public static let consumerCancelledByServer = Code(rawValue: "consumerCancelledByServer")
        /// The broker did not answer in time.
        public static let timeout = Code(rawValue: "timeout")
        /// A URL, option or argument given by the caller is not valid; nothing was sent.
        public static let invalidArgument = Code(rawValue: "invalidArgument")

        public var description: String { rawValue }

        /// `catch AMQPError.unroutable`: true when `error` is an `AMQPError` of this kind.
        public static func ~= (code: Code, error: any Error) -> Bool {
            (error as? AMQPError)?.kind == code
        }
    }

    /// The earlier name of `Code`, kept so `AMQPError.Kind` still reads.
    public typealias Kind = Code

    /// What kind of failure this is.
    public let kind: Code
    /// The AMQP operation that failed, e.g. `queue.declare`, `basic.publish`, `connection.open`.
    public let operation: String
    /// The server's reply code, for `connectionClosedByServer`, `channelClosedByServer` and `unroutable`.
    public let replyCode: ReplyCode?
    /// The method the broker refused, from the class and method ids of its `channel.close` or `connection.close`.
    public let failedMethod: AMQPMethod?
    /// True when the request that failed was a passive declare (only "does it exist?"); the client sets it, since
    /// the broker's close does not say.
    public let requestWasPassive: Bool
    /// The rabbitmq-c status code (`amqp_status_enum`), for `library` errors.
    public let libraryStatus: Int32?
    /// What the server or the library said, e.g. `NOT_FOUND - no exchange 'x' in vhost '/'`.
    public let message: String
    /// What the caller can do about it, where there is something useful to say.
    public let hint: String?

    public init(
        _ kind: Code, operation: String, message: String, replyCode: ReplyCode? = nil,
        failedMethod: AMQPMethod? = nil, requestWasPassive: Bool = false, libraryStatus: Int32? = nil,
        hint: String? = nil
    ) {
        self.kind = kind
        self.operation = operation
        self.message = message
        self.replyCode = replyCode
        self.failedMethod = failedMethod
        self.requestWasPassive = requestWasPassive
        self.libraryStatus = libraryStatus
        self.hint = hint
    }

    /// A client-side failure reported by rabbitmq-c with the given status.
    static func libraryFailure(_ status: Int32, operation: String, hint: String? = nil) -> AMQPError {
        let text = String(cString: amqp_error_string2(status))
        return AMQPError(.library, operation: operation, message: text, libraryStatus: status, hint: hint)
    }

    /// The same error with some fields replaced (the fields are constants).
    func with(operation: String? = nil, message: String? = nil, requestWasPassive: Bool? = nil) -> AMQPError {
        AMQPError(
            kind, operation: operation ?? self.operation, message: message ?? self.message, replyCode: replyCode,
            failedMethod: failedMethod, requestWasPassive: requestWasPassive ?? self.requestWasPassive,
            libraryStatus: libraryStatus, hint: hint)
    }

    /// The same error, naming the operation that was waiting when the connection closed.
    func forOperation(_ operation: String) -> AMQPError {
        guard kind == .closed || kind == .library || kind == .connectionClosedByServer else { return self }
        let message = self.operation == operation ? message : "\(self.operation): \(message)"
        return with(operation: operation, message: message)
    }

    /// True when only the channel is lost: the connection still works and a new channel can be opened.
    public var isChannelLevel: Bool { kind == .channelClosedByServer }

    /// True when the broker refused to declare a queue that exists but cannot be reached: a durable classic queue
    /// whose node is down (or whose process crashed or stopped). It comes back with its node, so this is worth
    /// retrying, unlike a queue that does not exist.
    ///
    /// Told by structure, not by the broker's text: a 404 NOT_FOUND in answer to a *non-passive* `queue.declare`.
    /// Such a declare creates a missing queue, so RabbitMQ answers it with 404 only for a queue it knows but cannot
    /// reach. A 404 on a passive declare, `basic.consume` or `queue.bind` cannot tell "missing" from "unreachable";
    /// declare the queue (non-passively) to find out.
    public var isNodeDown: Bool {
        replyCode == .notFound && failedMethod == .queueDeclare && !requestWasPassive
    }

    public var description: String {
        var text = "\(operation) failed: "
        switch kind {
        case .connectionClosedByServer:
            text += "the broker closed the connection with \(replyCode.map(\.description) ?? "?"): \(message)"
        case .channelClosedByServer:
            text += "the broker closed the channel with \(replyCode.map(\.description) ?? "?"): \(message)"
        case .unroutable:
            text += "the broker returned the message as unroutable (\(replyCode.map(\.description) ?? "?")): \(message)"
        default:
            text += message
        }
        if let hint { text += " (\(hint))" }
        return text
    }
}

// `catch AMQPError.notFound`, `catch AMQPError.closed`: the reply codes and kinds, as members of the error type.
extension AMQPError {
    public static let library = Code.library
    public static let connectionClosedByServer = Code.connectionClosedByServer
    public static let channelClosedByServer = Code.channelClosedByServer
    public static let closed = Code.closed
    public static let unroutable = Code.unroutable
    public static let nacked = Code.nacked
    public static let consumerCancelledByServer = Code.consumerCancelledByServer
    public static let timeout = Code.timeout
    public static let invalidArgument = Code.invalidArgument

    public static let contentTooLarge = ReplyCode.contentTooLarge
    public static let noRoute = ReplyCode.noRoute
    public static let noConsumers = ReplyCode.noConsumers
    public static let connectionForced = ReplyCode.connectionForced
    public static let invalidPath = ReplyCode.invalidPath
    public static let accessRefused = ReplyCode.accessRefused
    public static let notFound = ReplyCode.notFound
    public static let resourceLocked = ReplyCode.resourceLocked
    public static let preconditionFailed = ReplyCode.preconditionFailed
    public static let frameError = ReplyCode.frameError
    public static let syntaxError = ReplyCode.syntaxError
    public static let commandInvalid = ReplyCode.commandInvalid
    public static let channelError = ReplyCode.channelError
    public static let unexpectedFrame = ReplyCode.unexpectedFrame
    public static let resourceError = ReplyCode.resourceError
    public static let notAllowed = ReplyCode.notAllowed
    public static let notImplemented = ReplyCode.notImplemented
    public static let internalError = ReplyCode.internalError
}

extension ReplyCode {
    /// `catch AMQPError.notFound`: true when `error` is an `AMQPError` whose broker reply code is this one.
    public static func ~= (code: ReplyCode, error: any Error) -> Bool {
        (error as? AMQPError)?.replyCode == code
    }
}

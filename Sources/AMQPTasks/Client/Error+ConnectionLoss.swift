import AMQP

extension Error {
    /// True for a `basic.nack`: the broker did not store the message (a quorum queue without a leader for a moment,
    /// a full queue that rejects publishes). Publishing it again later, on the same connection, is safe.
    var isRefusalWorthRetrying: Bool { (self as? AMQPError)?.kind == .nacked }

    /// True when the error means the connection is gone (socket error, broker restart or forced close, timeout),
    /// so the operation may succeed on a new connection; false for refusals that a new connection would repeat.
    var isConnectionLoss: Bool {
        guard let error = self as? AMQPError else { return false }
        if error.isNodeDown { return true }  // a queue whose node is down: it comes back with the node
        switch error.kind {
        case .library, .timeout, .closed: return true
        case .connectionClosedByServer:
            // 320 CONNECTION_FORCED (broker shutdown, close_connection) and 541 INTERNAL_ERROR are transient;
            // 403 ACCESS_REFUSED, 530 NOT_ALLOWED would be the same on any connection.
            return error.replyCode != .accessRefused && error.replyCode != .notAllowed
        default: return false
        }
    }
}

import CRabbitMQ
import Logging

/// The broker's answers to synchronous methods, and its closes: a server exception closes the channel or the
/// connection as AMQP says, and becomes a typed `AMQPError`.
extension ConnectionCore {
    /// Checks an RPC reply; a server exception closes the channel or the connection. I/O thread only (checked).
    func check(_ reply: amqp_rpc_reply_t, operation: String, channel: UInt16) throws {
        thread.assertCurrent("check")
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case MethodID.channelClose:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                throw serverClosedChannel(channel, close, operation: operation)
            case MethodID.connectionClose:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                throw serverClosedConnection(close, operation: operation)
            default:
                let error = AMQPError(
                    .library, operation: operation, message: "unexpected server method \(reply.reply.id)")
                connectionFailed(error)
                throw error
            }
        default:
            let status = reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                ? reply.library_error : AMQP_STATUS_UNEXPECTED_STATE.rawValue
            let error = AMQPError.libraryFailure(
                status, operation: operation,
                hint: status == AMQP_STATUS_TIMEOUT.rawValue
                    ? "the broker did not answer within \(configuration.operationTimeout)" : nil)
            connectionFailed(error)
            throw error
        }
    }

    /// The broker closed a channel: acknowledge with `channel.close-ok`, fail what waits on the channel.
    /// I/O thread only (checked).
    @discardableResult
    func serverClosedChannel(_ id: UInt16, _ close: amqp_channel_close_t, operation: String?) -> AMQPError {
        var ok = amqp_channel_close_ok_t()
        _ = amqp_send_method(state, id, MethodID.channelCloseOk, &ok)
        let method = AMQPMethod(classID: close.class_id, methodID: close.method_id)
        let error = AMQPError(
            .channelClosedByServer, operation: method.name ?? operation ?? "channel \(id)",
            message: CDecode.string(close.reply_text), replyCode: ReplyCode(rawValue: close.reply_code),
            failedMethod: method, hint: ErrorHints.forReply(ReplyCode(rawValue: close.reply_code), text: CDecode.string(close.reply_text)))
        logger.debug("channel \(id) closed by the broker: \(error)")
        // Closed before its waiting publishes learn it: one that resumes must find `isOpen` false already.
        let channel = io.channels[id]
        releaseChannel(id, error: error)
        channel?.fail(with: error)
        return error
    }

    /// The broker closed the connection: acknowledge with `connection.close-ok`, fail everything.
    /// I/O thread only (checked).
    @discardableResult
    func serverClosedConnection(_ close: amqp_connection_close_t, operation: String?) -> AMQPError {
        var ok = amqp_connection_close_ok_t()
        _ = amqp_send_method(state, 0, MethodID.connectionCloseOk, &ok)
        let method = AMQPMethod(classID: close.class_id, methodID: close.method_id)
        let error = AMQPError(
            .connectionClosedByServer, operation: method.name ?? operation ?? "connection",
            message: CDecode.string(close.reply_text), replyCode: ReplyCode(rawValue: close.reply_code),
            failedMethod: method, hint: ErrorHints.forReply(ReplyCode(rawValue: close.reply_code), text: CDecode.string(close.reply_text)))
        connectionFailed(error)
        return error
    }
}

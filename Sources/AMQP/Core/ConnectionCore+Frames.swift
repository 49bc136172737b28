import CRabbitMQ
import FoundationEssentials
import Logging

/// Frames the broker sends on its own initiative: deliveries, confirms, returns, cancels and closes.
extension ConnectionCore {
    /// Dispatches one frame read by the loop. I/O thread only (checked).
    func handle(_ frame: amqp_frame_t) {
        thread.assertCurrent("handle(frame)")
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else {
            logger.warning("ignored a content frame outside a message on channel \(frame.channel)")
            return
        }
        let channel = frame.channel
        let decoded = frame.payload.method.decoded
        switch frame.payload.method.id {
        case MethodID.basicDeliver:
            let deliver = decoded!.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            deliverMessage(deliver, channel: channel)
        case MethodID.basicAck:
            let ack = decoded!.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            io.channels[channel]?.pendingConfirms.resolve(upTo: ack.delivery_tag, multiple: ack.multiple != 0, nack: nil)
        case MethodID.basicNack:
            let nack = decoded!.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            let error = AMQPError(
                .nacked, operation: "basic.publish",
                message: "the broker refused the message (basic.nack); it was not stored",
                hint: "publish it again; a queue may be full (x-overflow=reject-publish) or unavailable")
            io.channels[channel]?.pendingConfirms.resolve(
                upTo: nack.delivery_tag, multiple: nack.multiple != 0, nack: error)
        case MethodID.basicReturn:
            let returned = decoded!.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            returnMessage(returned, channel: channel)
        case MethodID.basicCancel:
            let cancel = decoded!.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = CDecode.string(cancel.consumer_tag)
            io.channels[channel]?.consumerTags.remove(tag)
            logger.warning("the broker cancelled consumer \(tag) on channel \(channel) (was its queue deleted?)")
            io.consumers.removeValue(forKey: tag)?.finish(
                AMQPError(
                    .consumerCancelledByServer, operation: "basic.consume",
                    message: "the broker cancelled consumer \(tag), e.g. because its queue was deleted",
                    hint: "declare the queue again and start a new consumer"))
        case MethodID.channelClose:
            let close = decoded!.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            serverClosedChannel(channel, close, operation: nil)
        case MethodID.connectionClose:
            let close = decoded!.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            serverClosedConnection(close, operation: nil)
        case MethodID.connectionBlocked:
            logger.warning("the broker blocked publishing on this connection (memory or disk alarm)")
        case MethodID.connectionUnblocked:
            logger.notice("the broker unblocked publishing on this connection")
        default:
            logger.debug("ignored method \(frame.payload.method.id) on channel \(channel)")
        }
    }

    private func deliverMessage(_ deliver: amqp_basic_deliver_t, channel: UInt16) {
        let tag = CDecode.string(deliver.consumer_tag)
        let exchange = CDecode.string(deliver.exchange)
        let routingKey = CDecode.string(deliver.routing_key)
        guard let (properties, body, problem) = readContent(channel: channel, operation: "basic.deliver") else { return }
        let delivery = Delivery(
            body: body, properties: properties, deliveryTag: deliver.delivery_tag,
            redelivered: deliver.redelivered != 0, exchange: exchange, routingKey: routingKey, consumerTag: tag,
            contentProblem: problem, core: self, channelID: channel, channelGeneration: io.channels[channel]?.generation ?? 0)
        if let sink = io.consumers[tag] {
            sink.yield(delivery)
        } else if io.channels[channel] != nil {
            // The consumer was cancelled while this delivery was in flight: give it back so it is not lost.
            _ = amqp_basic_reject(state, channel, deliver.delivery_tag, 1)
        }
        // Otherwise its channel was closed meanwhile (the delivery was read while channel.close waited for its
        // close-ok): the broker requeued it with the channel, and a reject on the closed channel would make the
        // broker close the whole connection (504 CHANNEL_ERROR).
    }

    private func returnMessage(_ returned: amqp_basic_return_t, channel: UInt16) {
        let exchange = CDecode.string(returned.exchange)
        let routingKey = CDecode.string(returned.routing_key)
        let code = ReplyCode(rawValue: returned.reply_code)
        let text = CDecode.string(returned.reply_text)
        guard readContent(channel: channel, operation: "basic.return") != nil else { return }
        let error = AMQPError(
            .unroutable, operation: "basic.publish",
            message: "\(text): no queue is bound to exchange '\(exchange)' with routing key '\(routingKey)'",
            replyCode: code, hint: "declare the queue and its binding, or check the routing key")
        guard let channelState = io.channels[channel] else { return }
        if channelState.transactional {
            channelState.returnedInTransaction.append(error)
        } else if !channelState.pendingConfirms.markReturned(exchange: exchange, routingKey: routingKey, error: error) {
            logger.warning("message returned by the broker: \(error)")
        }
    }

    /// Reads the content header and body frames that follow `basic.deliver`, `basic.return` or `basic.get-ok`.
    /// The properties are copied out of rabbitmq-c's pool; the body's buffer (which rabbitmq-c allocated for this
    /// message alone) is handed to the `Data` as it is, so a large body is never copied. I/O thread only (checked
    /// through `io`).
    func readContent(channel: UInt16, operation: String) -> (BasicProperties, Data, String?)? {
        var message = amqp_message_t()
        let reply = amqp_read_message(state, channel, &message, 0)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            let status = reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                ? reply.library_error : AMQP_STATUS_UNEXPECTED_STATE.rawValue
            connectionFailed(.libraryFailure(status, operation: "read the content of \(operation)"))
            return nil
        }
        defer { amqp_destroy_message(&message) }
        var problems = CDecode.Problems()
        let properties = CDecode.properties(message.properties, problems: &problems)
        let body: Data
        if message.body.len > 0, let bytes = message.body.bytes {
            body = Data(bytesNoCopy: bytes, count: message.body.len, deallocator: .free)
            message.body = amqp_empty_bytes
        } else {
            body = Data()
        }
        return (properties, body, problems.description)
    }
}

import CRabbitMQ
import CRabbitMQShim
import FoundationEssentials

/// The AMQP methods a client sends, as calls into rabbitmq-c. All I/O thread only (checked through `io`).
extension ConnectionCore {
    func exchangeDeclare(
        channel: UInt16, name: String, type: String, passive: Bool, durable: Bool, autoDelete: Bool,
        isInternal: Bool, arguments: FieldTable
    ) throws {
        _ = try openChannelState(channel, operation: "exchange.declare")
        try ShortStrings.check(
            "exchange.declare", ["exchange name": name, "exchange type": type], arguments: arguments)
        try checkMethodFits("exchange.declare", names: [name, type], arguments: arguments)
        amqp_exchange_declare(
            state, channel, arena.bytes(name), arena.bytes(type), passive.c, durable.c, autoDelete.c, isInternal.c,
            arena.table(arguments))
        do {
            try check(amqp_get_rpc_reply(state), operation: "exchange.declare '\(name)'", channel: channel)
        } catch let error as AMQPError where passive {
            throw error.with(requestWasPassive: true)
        }
    }

    func exchangeDelete(channel: UInt16, name: String, ifUnused: Bool) throws {
        _ = try openChannelState(channel, operation: "exchange.delete")
        try ShortStrings.check("exchange.delete", ["exchange name": name])
        amqp_exchange_delete(state, channel, arena.bytes(name), ifUnused.c)
        try check(amqp_get_rpc_reply(state), operation: "exchange.delete '\(name)'", channel: channel)
    }

    func exchangeBind(
        channel: UInt16, destination: String, source: String, routingKey: String, arguments: FieldTable
    ) throws {
        _ = try openChannelState(channel, operation: "exchange.bind")
        try ShortStrings.check(
            "exchange.bind",
            ["destination exchange name": destination, "source exchange name": source, "routing key": routingKey],
            arguments: arguments)
        try checkMethodFits("exchange.bind", names: [destination, source, routingKey], arguments: arguments)
        amqp_exchange_bind(
            state, channel, arena.bytes(destination), arena.bytes(source), arena.bytes(routingKey),
            arena.table(arguments))
        try check(
            amqp_get_rpc_reply(state),
            operation: "exchange.bind '\(destination)' to '\(source)' with '\(routingKey)'", channel: channel)
    }

    func queueDeclare(
        channel: UInt16, name: String, passive: Bool, durable: Bool, exclusive: Bool, autoDelete: Bool,
        arguments: FieldTable
    ) throws -> QueueState {
        _ = try openChannelState(channel, operation: "queue.declare")
        try ShortStrings.check("queue.declare", ["queue name": name], arguments: arguments)
        try checkMethodFits("queue.declare", names: [name], arguments: arguments)
        let ok = amqp_queue_declare(
            state, channel, arena.bytes(name), passive.c, durable.c, exclusive.c, autoDelete.c,
            arena.table(arguments))
        do {
            try check(amqp_get_rpc_reply(state), operation: "queue.declare '\(name)'", channel: channel)
        } catch let error as AMQPError where passive {
            throw error.with(requestWasPassive: true)
        }
        let result = ok!.pointee
        return QueueState(
            name: CDecode.string(result.queue), messageCount: result.message_count,
            consumerCount: result.consumer_count)
    }

    func queueBind(
        channel: UInt16, queue: String, exchange: String, routingKey: String, arguments: FieldTable, unbind: Bool
    ) throws {
        let operation = unbind ? "queue.unbind" : "queue.bind"
        _ = try openChannelState(channel, operation: operation)
        try ShortStrings.check(
            operation, ["queue name": queue, "exchange name": exchange, "routing key": routingKey], arguments: arguments)
        try checkMethodFits(operation, names: [queue, exchange, routingKey], arguments: arguments)
        if unbind {
            amqp_queue_unbind(
                state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey),
                arena.table(arguments))
        } else {
            amqp_queue_bind(
                state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey),
                arena.table(arguments))
        }
        try check(
            amqp_get_rpc_reply(state), operation: "\(operation) '\(queue)' to '\(exchange)' with '\(routingKey)'",
            channel: channel)
    }

    func queuePurge(channel: UInt16, name: String) throws -> UInt32 {
        _ = try openChannelState(channel, operation: "queue.purge")
        try ShortStrings.check("queue.purge", ["queue name": name])
        let ok = amqp_queue_purge(state, channel, arena.bytes(name))
        try check(amqp_get_rpc_reply(state), operation: "queue.purge '\(name)'", channel: channel)
        return ok!.pointee.message_count
    }

    func queueDelete(channel: UInt16, name: String, ifUnused: Bool, ifEmpty: Bool) throws -> UInt32 {
        _ = try openChannelState(channel, operation: "queue.delete")
        try ShortStrings.check("queue.delete", ["queue name": name])
        let ok = amqp_queue_delete(state, channel, arena.bytes(name), ifUnused.c, ifEmpty.c)
        try check(amqp_get_rpc_reply(state), operation: "queue.delete '\(name)'", channel: channel)
        return ok!.pointee.message_count
    }

    func basicQos(channel: UInt16, prefetchCount: UInt16, global: Bool) throws {
        _ = try openChannelState(channel, operation: "basic.qos")
        amqp_basic_qos(state, channel, 0, prefetchCount, global.c)
        try check(amqp_get_rpc_reply(state), operation: "basic.qos", channel: channel)
    }

    func confirmSelect(channel: UInt16) throws {
        try select(.confirms, channel: channel) { amqp_confirm_select($0, $1) }
    }

    /// Selects confirms or transactions on a channel: idempotent; `.invalidArgument` when it has the other.
    func select(
        _ mode: PublishingMode, channel: UInt16, method: (amqp_connection_state_t?, amqp_channel_t) -> Void
    ) throws {
        let channelState = try openChannelState(channel, operation: mode.method)
        guard channelState.publishingMode != mode else { return }
        if let other = channelState.publishingMode {
            throw AMQPError(
                .invalidArgument, operation: mode.method,
                message: "channel \(channel) is \(other.state); AMQP allows \(mode.allows) only on other channels",
                hint: "open a separate channel for \(mode.allows)")
        }
        method(state, channel)
        try check(amqp_get_rpc_reply(state), operation: mode.method, channel: channel)
        channelState.publishingMode = mode
    }

    /// Sends one message. On a confirm channel `completion` runs when the broker confirms it; otherwise at once.
    func publish(
        channel: UInt16, _ message: OutgoingMessage, completion: @escaping (Result<Void, AMQPError>) -> Void
    ) {
        let channelState: ChannelState
        do {
            channelState = try openChannelState(channel, operation: "basic.publish")
        } catch {
            completion(.failure(error as! AMQPError))
            return
        }
        if let (field, length) = ShortStrings.firstOverlong(in: message) {
            // Refused before anything is written: the connection and channel stay usable.
            completion(
                .failure(
                    AMQPError(
                        .invalidArgument, operation: "basic.publish",
                        message: "the \(field) is \(length) bytes long; AMQP allows at most \(ShortStrings.maxBytes)",
                        hint: "shorten it; nothing was sent")))
            return
        }
        if let error = contentHeaderOverflow(message.properties) {
            completion(.failure(error))  // refused before anything is written, as above
            return
        }
        var properties = arena.properties(message.properties)
        let status = message.body.withUnsafeBytes { body in
            let bytes = amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress))
            // rabbitmq-c cuts the body into frames of its own frame size, which on a consuming connection is larger
            // than the negotiated one (`ConsumingFrameHeadroom`): a body that needs more than one frame is cut here.
            guard body.count > io.frameMax - Self.frameHeaderAndEnd, Int(amqp_get_frame_max(state)) != io.frameMax
            else {
                return amqp_basic_publish(
                    state, channel, arena.bytes(message.exchange), arena.bytes(message.routingKey),
                    message.mandatory.c, 0, &properties, bytes)
            }
            return amqp_tasks_basic_publish(
                state, channel, arena.bytes(message.exchange), arena.bytes(message.routingKey), message.mandatory.c,
                &properties, bytes, Int32(io.frameMax))
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            let error = AMQPError.libraryFailure(status, operation: "basic.publish")
            connectionFailed(error)
            completion(.failure(error))
            return
        }
        guard channelState.confirmMode else {
            completion(.success(()))
            return
        }
        let sequence = channelState.nextPublishSequence
        channelState.nextPublishSequence += 1
        channelState.pendingConfirms.append(
            PendingConfirm(
                exchange: message.exchange, routingKey: message.routingKey, mandatory: message.mandatory,
                returned: nil, completion: completion),
            sequence: sequence)
    }

    func basicConsume(
        channel: UInt16, queue: String, tag: String, exclusive: Bool, arguments: FieldTable,
        continuation: AsyncThrowingStream<Delivery, Error>.Continuation, channelOpen: ChannelOpenFlag
    ) throws -> String {
        let channelState = try openChannelState(channel, operation: "basic.consume")
        try ShortStrings.check("basic.consume", ["queue name": queue, "consumer tag": tag], arguments: arguments)
        try checkMethodFits("basic.consume", names: [queue, tag], arguments: arguments)
        let ok = amqp_basic_consume(
            state, channel, arena.bytes(queue), arena.bytes(tag), 0, 0, exclusive.c, arena.table(arguments))
        try check(amqp_get_rpc_reply(state), operation: "basic.consume '\(queue)'", channel: channel)
        let consumerTag = CDecode.string(ok!.pointee.consumer_tag)
        channelState.consumerTags.insert(consumerTag)
        io.consumers[consumerTag] = ConsumerSink(continuation: continuation, channelOpen: channelOpen)
        return consumerTag
    }

    func basicCancel(channel: UInt16, tag: String) throws {
        guard let channelState = io.channels[channel], channelState.consumerTags.contains(tag) else { return }
        amqp_basic_cancel(state, channel, arena.bytes(tag))
        try check(amqp_get_rpc_reply(state), operation: "basic.cancel '\(tag)'", channel: channel)
        channelState.consumerTags.remove(tag)
        io.consumers.removeValue(forKey: tag)?.finish(nil)
    }

    func basicGet(channel: UInt16, queue: String, autoAck: Bool) throws -> Delivery? {
        _ = try openChannelState(channel, operation: "basic.get")
        try ShortStrings.check("basic.get", ["queue name": queue])
        let reply = amqp_basic_get(state, channel, arena.bytes(queue), autoAck.c)
        try check(reply, operation: "basic.get '\(queue)'", channel: channel)
        guard reply.reply.id == MethodID.basicGetOk else { return nil }
        let ok = reply.reply.decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        let exchange = CDecode.string(ok.exchange)
        let routingKey = CDecode.string(ok.routing_key)
        guard let (properties, body, problem) = readContent(channel: channel, operation: "basic.get") else {
            throw closedError ?? AMQPError(.closed, operation: "basic.get", message: "the connection closed")
        }
        return Delivery(
            body: body, properties: properties, deliveryTag: ok.delivery_tag, redelivered: ok.redelivered != 0,
            exchange: exchange, routingKey: routingKey, consumerTag: nil, messageCount: ok.message_count,
            contentProblem: problem, core: self, channelID: channel, channelGeneration: io.channels[channel]?.generation ?? 0)
    }

    /// `basic.ack`, `basic.nack` or `basic.reject` for a delivery on `channel`.
    /// With `generation`, only if the channel is still the opening the delivery came on.
    func settle(channel: UInt16, generation: UInt64? = nil, deliveryTag: UInt64, _ settlement: Settlement) throws {
        let operation = settlement.methodName
        let channelState = try openChannelState(channel, operation: operation)
        if let generation, channelState.generation != generation {
            throw AMQPError(
                .closed, operation: operation,
                message: "the channel this delivery came on was closed, so the broker has requeued the message",
                hint: "nothing to do: it is delivered again")
        }
        let status: Int32
        switch settlement {
        case .ack(let multiple): status = amqp_basic_ack(state, channel, deliveryTag, multiple.c)
        case .nack(let multiple, let requeue):
            status = amqp_basic_nack(state, channel, deliveryTag, multiple.c, requeue.c)
        case .reject(let requeue): status = amqp_basic_reject(state, channel, deliveryTag, requeue.c)
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            let error = AMQPError.libraryFailure(status, operation: operation)
            connectionFailed(error)
            throw error
        }
    }
}

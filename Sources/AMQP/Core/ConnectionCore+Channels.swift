import CRabbitMQ

/// Opening, looking up and closing channels. All I/O thread only (checked through `io`).
extension ConnectionCore {
    /// The open channel `id`, or the error saying it is closed.
    func openChannelState(_ id: UInt16, operation: String) throws -> ChannelState {
        guard let channel = io.channels[id] else { throw closedChannelError(id, operation: operation) }
        return channel
    }

    /// True when channel `id` is open and is the opening `open` belongs to, not a newer channel given its number.
    func isCurrent(_ id: UInt16, _ open: ChannelOpenFlag) -> Bool { io.channels[id]?.open === open }

    /// Throws `.closed` unless channel `id` is open and is the opening `open` belongs to.
    func requireCurrent(_ id: UInt16, _ open: ChannelOpenFlag, operation: String) throws {
        guard isCurrent(id, open) else { throw closedChannelError(id, operation: operation) }
    }

    func closedChannelError(_ id: UInt16, operation: String) -> AMQPError {
        AMQPError(
            .closed, operation: operation, message: "channel \(id) is closed",
            hint: "the broker closes a channel on an error (404, 406, 403…); open a new channel to go on")
    }

    /// Opens a channel (`channel.open`) on a free number and returns the number, with the flag that says while it is
    /// open.
    func openChannel() throws -> (id: UInt16, open: ChannelOpenFlag) {
        let io = io
        let id = try io.channelIDs.allocate()
        amqp_channel_open(state, id)
        do {
            try check(amqp_get_rpc_reply(state), operation: "channel.open", channel: id)
        } catch {
            releaseChannel(id)
            throw error
        }
        io.channelGenerations += 1
        let state = ChannelState(id: id, generation: io.channelGenerations)
        io.channels[id] = state
        return (id, state.open)
    }

    /// Closes channel `id` (`channel.close`): publishes waiting for confirms fail, consumers end.
    func closeChannel(_ id: UInt16) throws {
        guard io.channels[id] != nil else { return }
        let reply = amqp_channel_close(state, id, Int32(AMQP_REPLY_SUCCESS))
        // Closed before its waiting publishes learn it: one that resumes must find `isOpen` false already.
        let channel = io.channels[id]
        releaseChannel(id)
        channel?.fail(
            with: AMQPError(.closed, operation: "basic.publish", message: "channel \(id) was closed before the confirm"))
        try check(reply, operation: "channel.close", channel: id)
    }

    /// Forgets a closed channel and lets its number be used again. Its consumers' sequences end normally when the
    /// application closed it, and throw `error` when the broker did, so a consumer never silently stops.
    func releaseChannel(_ id: UInt16, error: AMQPError? = nil) {
        let io = io
        if let channel = io.channels.removeValue(forKey: id) {
            channel.open.close()
            for tag in channel.consumerTags {
                guard let sink = io.consumers.removeValue(forKey: tag) else { continue }
                sink.channelClosed()
                sink.finish(error)
            }
        }
        io.channelIDs.release(id)
    }
}

import AMQP

/// The channel of one consumer slot, in confirm mode with the slot's prefetch, opened again when it closed: a task's
/// outcome is recorded on an open channel even when the broker closed the one the task was delivered on (its
/// `consumer_timeout`, say), and the slot's next consumer starts on it.
actor SlotChannel {
    private let connection: Connection
    private let prefetch: UInt16
    private var channel: Channel?

    init(connection: Connection, prefetch: UInt16) {
        self.connection = connection
        self.prefetch = prefetch
    }

    /// The open channel, opening a new one when there is none.
    func current() async throws -> Channel {
        if let channel, channel.isOpen { return channel }
        let channel = try await connection.openChannel()
        do {
            try await channel.confirmSelect()
            try await channel.setPrefetch(prefetch)
        } catch {
            try? await channel.close()
            throw error
        }
        self.channel = channel
        return channel
    }

    /// Closes the channel, if open: the broker requeues what it holds unacknowledged.
    func close() async {
        if let channel, channel.isOpen, connection.isOpen { try? await channel.close() }
        channel = nil
    }
}

import AMQP
import FoundationEssentials
import Logging

/// Publishes a worker's remote-control replies on a channel of their own, with publisher confirms.
///
/// A reply can fail in ways that close its channel (the reply exchange was deleted: 404; someone redeclared it with
/// other properties: 406). On the channel that consumes `<hostname>.celery.pidbox`, that would end remote control;
/// here it costs only that reply: the failure is logged, and the next reply opens a new channel and declares the
/// reply exchange again. Each reply is tried at most twice, so nothing loops.
actor PidboxReplies {
    private let connection: Connection
    private let logger: Logger
    private var channel: Channel?
    /// Replies the broker confirmed; for tests and `stats`.
    private(set) var delivered = 0
    /// Replies given up on.
    private(set) var dropped = 0

    init(connection: Connection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Publishes `message` to the reply exchange; never throws, never closes the caller's channel.
    func send(_ message: OutgoingMessage) async {
        var lastError: Error?
        for _ in 0..<2 {
            guard connection.isOpen else { break }
            do {
                try await open().publish(message)
                delivered += 1
                return
            } catch {
                // Whatever happened, this channel may be closed: the next attempt starts on a fresh one.
                lastError = error
                if let channel { try? await channel.close() }
                channel = nil
            }
        }
        dropped += 1
        logger.warning(
            "a remote-control reply to \(message.exchange) with key \(message.routingKey) was not delivered: \(lastError.map { "\($0)" } ?? "the connection is closed"); remote control goes on"
        )
    }

    func close() async {
        if let channel { try? await channel.close() }
        channel = nil
    }

    private func open() async throws -> Channel {
        if let channel { return channel }
        let opened = try await connection.openChannel()
        do {
            try await opened.confirmSelect()
            // As Celery declares it; a requester normally has, but it may have been deleted since.
            try await opened.declareExchange(RemoteControl.replyExchange, type: .direct, durable: false)
        } catch {
            try? await opened.close()
            throw error
        }
        channel = opened
        return opened
    }
}

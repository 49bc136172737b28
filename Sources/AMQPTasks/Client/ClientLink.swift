import AMQP
import FoundationEssentials
import Glibc
import Logging
import Synchronization

/// Owns the client's current session and makes a new one when it is lost: at most one connection attempt at a
/// time, shared by every caller that needs the link.
actor ClientLink {
    private let brokers: [ConnectionConfiguration]
    private let replyQueue: String
    private let replyQueueArguments: FieldTable
    private let logger: Logger
    private var current: ClientSession? { didSet { publishReadySession() } }
    private var attempt: Task<ClientSession, Error>?
    /// The replacement of the current session's closed publishing channel, while one is under way.
    private var repair: Task<ClientSession, Error>?
    private var generation = 0
    private var failedAttempts = 0
    private var channelBroken = false { didSet { publishReadySession() } }
    /// Starts consuming results on a new session; set once by the client.
    private var onSession: (@Sendable (ClientSession) async throws -> Void)?
    private(set) var isClosed = false { didSet { publishReadySession() } }
    /// `current` while it can publish (not closed, channel not broken), readable without a hop onto the actor.
    private let ready = Mutex<ClientSession?>(nil)
    /// Callers of `waitUntilClosed()`, by a token that lets a cancelled one leave.
    private var closeWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextCloseWaiter = 0
    var closeWaiterCount: Int { closeWaiters.count }

    init(brokers: [ConnectionConfiguration], replyQueue: String, replyQueueArguments: FieldTable, logger: Logger) {
        self.brokers = brokers
        self.replyQueue = replyQueue
        self.replyQueueArguments = replyQueueArguments
        self.logger = logger
    }

    func setSessionHandler(_ handler: @escaping @Sendable (ClientSession) async throws -> Void) {
        onSession = handler
    }

    /// The session to publish on when it is ready (client not closed, connection open, publishing channel open),
    /// read without a hop onto this actor; nil when `session()` must repair or reconnect.
    ///
    /// Every `send` asks for the session: with 1,000 concurrent callers, a hop onto the actor and back each was
    /// two more job switches per message, all queued on one actor (issue 17). The channel's own open flag is read
    /// too: the broker may have closed it (another sender's 404) before any sender reported it with `channelLost`.
    nonisolated var readySession: ClientSession? {
        guard let session = ready.withLock({ $0 }), session.connection.isOpen, session.publisher.isOpen else {
            return nil
        }
        return session
    }

    /// Keeps `readySession` in step with `current`, `channelBroken` and `isClosed` (called on each change).
    private func publishReadySession() {
        let usable = isClosed || channelBroken ? nil : current
        ready.withLock { $0 = usable }
    }

    /// The open session, or a new one (one connection attempt across all URLs) when there is none.
    func session() async throws -> ClientSession {
        if isClosed { throw TaskClientError.clientClosed("send") }
        if let current, current.connection.isOpen {
            if !channelBroken, current.publisher.isOpen { return current }
            // The broker closed the publishing channel (404, 403…): one new channel on the same connection, shared by
            // every caller that finds it closed meanwhile (one each would leave all but the last open, unused).
            if let repair { return try await repair.value }
            let repair = Task { try await self.replacePublisher(of: current) }
            self.repair = repair
            defer { self.repair = nil }
            return try await repair.value
        }
        if let attempt { return try await attempt.value }
        let attempt = Task { try await self.connect() }
        self.attempt = attempt
        defer { self.attempt = nil }
        return try await attempt.value
    }

    /// Opens a publishing channel in place of `session`'s closed one, on the same connection.
    private func replacePublisher(of session: ClientSession) async throws -> ClientSession {
        let publisher = try await session.connection.openChannel()
        try await publisher.confirmSelect()
        guard !isClosed, current?.generation == session.generation else {
            // Closed or lost while the channel opened: it belongs to nothing.
            try? await publisher.close()
            if isClosed { throw TaskClientError.clientClosed("send") }
            throw AMQPError(.closed, operation: "channel.open", message: "the connection was lost while its publishing channel was replaced")
        }
        let repaired = ClientSession(
            connection: session.connection, publisher: publisher, generation: session.generation,
            delayed: session.delayed)
        current = repaired
        channelBroken = false
        return repaired
    }

    /// The session's connection was lost: the next `session()` reconnects.
    func lost(_ session: ClientSession, because error: Error) {
        guard current?.generation == session.generation else { return }
        logger.warning("lost the connection to the broker: \(error)")
        current = nil
        Task { await session.connection.close() }
    }

    /// The broker closed the session's publishing channel; the connection still serves. A report against a
    /// channel already replaced (a sender that held the old one) leaves the new one alone.
    func channelLost(_ session: ClientSession) {
        if current?.generation == session.generation, current?.publisher === session.publisher { channelBroken = true }
    }

    /// A publish on `session` failed with `error`, which says the connection may be gone (`.closed`, a socket
    /// error…). When the connection is in fact still open and only the publishing channel is closed (the broker
    /// closed it for another sender's refusal after this sender took the session), only the channel is replaced:
    /// dropping the healthy connection would fail every publish in flight on it and restart the result consumer.
    func publishFailed(_ session: ClientSession, because error: Error) {
        if session.connection.isOpen, !session.publisher.isOpen {
            channelLost(session)
        } else {
            lost(session, because: error)
        }
    }

    /// The pause before the next connection attempt, growing with each attempt since the last success.
    func backoff(_ policy: ReconnectPolicy) -> Duration {
        policy.delay(beforeAttempt: max(1, failedAttempts))
    }

    func close() async {
        isClosed = true
        attempt?.cancel()
        for waiter in closeWaiters.values { waiter.resume() }
        closeWaiters.removeAll()
        if let current { await current.connection.close() }
        current = nil
    }

    /// Returns once `close()` was called, or when the calling task is cancelled.
    func waitUntilClosed() async {
        let token = nextCloseWaiter
        nextCloseWaiter += 1
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                // A cancel that came before this line found no waiter to resume: it is seen here instead.
                if isClosed || Task.isCancelled { waiter.resume() } else { closeWaiters[token] = waiter }
            }
        } onCancel: {
            Task { await self.stopWaiting(token) }
        }
    }

    private func stopWaiting(_ token: Int) {
        closeWaiters.removeValue(forKey: token)?.resume()
    }

    private func connect() async throws -> ClientSession {
        var opened: Connection?
        do {
            let connection = try await Connection.open(
                anyOf: brokers.map(\.consuming), startingAt: generation + failedAttempts, connectionName: "amqp-tasks client \(getpid()) \(replyQueue)",
                logger: logger)
            opened = connection
            let publisher = try await connection.openChannel()
            try await publisher.confirmSelect()
            try await publisher.declareQueue(replyQueue, durable: true, autoDelete: false, arguments: replyQueueArguments)
            generation += 1
            let session = ClientSession(connection: connection, publisher: publisher, generation: generation)
            try await onSession?(session)
            if isClosed {
                await connection.close()
                throw TaskClientError.clientClosed("connect")
            }
            if generation > 1 { logger.notice("reconnected to the broker (connection \(generation))") }
            current = session
            channelBroken = false
            failedAttempts = 0
            return session
        } catch {
            failedAttempts += 1
            if let opened { await opened.close() }
            throw error
        }
    }
}

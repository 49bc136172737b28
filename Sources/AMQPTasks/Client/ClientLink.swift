import AMQP
import Foundation
import Logging

/// How a `TaskClient` rides out a lost connection (a broker restart, a node that died, a connection an operator
/// closed): it reconnects with exponential backoff and jitter, trying each broker URL in turn, re-declares its reply
/// queue and resumes consuming results; a send whose connection was lost before the broker confirmed it is
/// published again on the new connection.
public struct ReconnectPolicy: Sendable, Hashable {
    /// How long a send keeps reconnecting and republishing before it fails with `SendFailure`. Zero: a send fails
    /// with the first lost connection.
    public var sendRetryWindow: Double = 60
    /// The first pause between connection attempts, in seconds; it doubles with each failed attempt.
    public var initialDelay: Double = 0.2
    /// The longest pause between connection attempts, in seconds.
    public var maxDelay: Double = 5

    public init(sendRetryWindow: Double = 60, initialDelay: Double = 0.2, maxDelay: Double = 5) {
        self.sendRetryWindow = sendRetryWindow
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
    }

    /// The pause before attempt `attempt` (1, 2, …): the backoff for that attempt, half of it random (jitter), so
    /// many clients that lost the same broker do not all come back at the same instant.
    func delay(beforeAttempt attempt: Int) -> Double {
        let backoff = min(maxDelay, initialDelay * pow(2, Double(min(max(attempt - 1, 0), 16))))
        return Double.random(in: backoff / 2...backoff)
    }
}

/// A send that was not confirmed by the broker. The task may or may not have reached a queue: when the connection
/// was lost after the message left, the broker may have taken it without the confirm reaching us.
public struct SendFailure: Error, Sendable, CustomStringConvertible {
    /// The task that was not confirmed.
    public let taskId: String
    /// How many times it was published, counting the first.
    public let attempts: Int
    /// Why the last attempt failed.
    public let lastError: Error

    public var description: String {
        "task \(taskId) was not confirmed by the broker after \(attempts) attempt(s): \(lastError) (the broker may still have it: sending it again with the same id is safe for idempotent tasks)"
    }
}

/// One connection of a `TaskClient`, with the channel it publishes on. Replaced as a whole when it is lost.
struct ClientSession: Sendable {
    let connection: Connection
    let publisher: Channel
    /// Counts the sessions of one client: a failure reported against an older session is ignored.
    let generation: Int
}

/// Owns the client's current session and makes a new one when it is lost: at most one connection attempt at a
/// time, shared by every caller that needs the link.
actor ClientLink {
    private let brokers: [ConnectionConfiguration]
    private let replyQueue: String
    private let replyQueueArguments: FieldTable
    private let logger: Logger
    private var current: ClientSession?
    private var attempt: Task<ClientSession, Error>?
    private var generation = 0
    private var failedAttempts = 0
    private var channelBroken = false
    /// Starts consuming results on a new session; set once by the client.
    private var onSession: (@Sendable (ClientSession) async throws -> Void)?
    private(set) var isClosed = false

    init(brokers: [ConnectionConfiguration], replyQueue: String, replyQueueArguments: FieldTable, logger: Logger) {
        self.brokers = brokers
        self.replyQueue = replyQueue
        self.replyQueueArguments = replyQueueArguments
        self.logger = logger
    }

    func setSessionHandler(_ handler: @escaping @Sendable (ClientSession) async throws -> Void) {
        onSession = handler
    }

    /// The open session, or a new one (one connection attempt across all URLs) when there is none.
    func session() async throws -> ClientSession {
        if isClosed { throw AMQPError(.closed, operation: "send", message: "the task client was closed") }
        if let current, current.connection.isOpen {
            if !channelBroken { return current }
            // The broker closed the publishing channel (404, 403…): a new channel on the same connection.
            let publisher = try await current.connection.openChannel()
            try await publisher.confirmSelect()
            let repaired = ClientSession(connection: current.connection, publisher: publisher, generation: current.generation)
            self.current = repaired
            channelBroken = false
            return repaired
        }
        if let attempt { return try await attempt.value }
        let attempt = Task { try await self.connect() }
        self.attempt = attempt
        defer { self.attempt = nil }
        return try await attempt.value
    }

    /// The session's connection was lost: the next `session()` reconnects.
    func lost(_ session: ClientSession, because error: Error) {
        guard current?.generation == session.generation else { return }
        logger.warning("lost the connection to the broker: \(error)")
        current = nil
        Task { await session.connection.close() }
    }

    /// The broker closed the session's publishing channel; the connection still serves.
    func channelLost(_ session: ClientSession) {
        if current?.generation == session.generation { channelBroken = true }
    }

    /// The pause before the next connection attempt, growing with each attempt since the last success.
    func backoff(_ policy: ReconnectPolicy) -> Double {
        policy.delay(beforeAttempt: max(1, failedAttempts))
    }

    func close() async {
        isClosed = true
        attempt?.cancel()
        if let current { await current.connection.close() }
        current = nil
    }

    private func connect() async throws -> ClientSession {
        var opened: Connection?
        do {
            let connection = try await Connection.open(
                anyOf: brokers, startingAt: generation + failedAttempts, connectionName: "amqp-tasks client \(replyQueue)",
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
                throw AMQPError(.closed, operation: "connect", message: "the task client was closed")
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

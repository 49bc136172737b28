import AMQP
import FoundationEssentials
import Logging
import Synchronization

/// Rate limits kept by all workers together (`[tasks."NAME"] rate_limit_scope = "cluster"`): at most N starts of
/// the task per period across the cluster, however many workers run it.
///
/// Starts are tokens kept in the broker. Each such task has a token queue, `amqp-tasks.rate.<task>` (a quorum
/// queue holding at most `burst` tokens, `x-overflow` `reject-publish`: a token issued while the queue is full is
/// dropped). For each such task one worker, its refiller, issues the tokens at the rate: it is elected through the
/// broker (`ExclusiveQueueLock` on `amqp-tasks.rate-refiller.<task>`, as the periodic scheduler elects its leader)
/// on a connection of its own with a short heartbeat, so when it stops or dies another worker takes over within
/// about a second (a host that goes silent: within twice the heartbeat). Token k of a refiller is issued in the
/// interval after it was due, `k / rate` after its first (after a stall it does not catch up).
///
/// A task of such a name waits for a token before it runs: its consumer takes one from the token queue (prefetch
/// 1, so the waiting slot holds at most the one token it needs, and nothing else), acknowledges it (taken = used:
/// a worker that dies after taking one loses that start, never repeats it) and runs the task. A waiting task
/// that is revoked stops waiting at once (any token it was being handed goes back to the queue).
///
/// The bound: in any window of T seconds the refiller issues at most `⌈rate × T⌉ + 1` tokens (token k within the
/// interval after it is due). The tasks started (tokens taken) in such a window are those issued in it, plus the
/// ones the queue held when it opened (at most `burst`), plus those in flight then (delivered, not yet taken: at
/// most one per consumer slot waiting for a token, W; usually one, but on a loaded machine a delivery can take longer
/// than an interval): at most `⌈rate × T⌉ + 1 + burst + W`, plus one for each
/// refiller takeover in the window (the new refiller issues its first token at once). The rate is the refiller's:
/// workers whose configurations give the task different rates get the rate of whichever refills.
final class ClusterRateLimits: Sendable {
    /// The lock whose holder issues the tokens of `task` (cut to fit AMQP's 255 bytes).
    static func refillerLock(_ task: String) -> String {
        var name = "amqp-tasks.rate-refiller.\(task)"
        while name.utf8.count > 255 { name.removeLast() }
        return name
    }
    /// Tokens a token queue keeps when nobody takes them: the starts that may come at once after a quiet time.
    static let burst = 1
    /// Heartbeat of the connection that holds the lock: a refiller whose host goes silent loses it after about
    /// twice this.
    static let heartbeat: Duration = .seconds(5)
    /// How often a worker that is not the refiller tries to become it, and how soon a lost connection is retried.
    static let retryInterval: Duration = .seconds(1)

    /// The token queue of `task` (cut to fit AMQP's 255 bytes).
    static func queue(_ task: String) -> String {
        var name = "amqp-tasks.rate.\(task)"
        while name.utf8.count > 255 { name.removeLast() }
        return name
    }

    /// The arguments of every token queue; every worker declares them alike.
    static let queueArguments: FieldTable = [
        "x-queue-type": .string("quorum"), "x-max-length": .int32(Int32(burst)), "x-overflow": .string("reject-publish"),
    ]

    /// The cluster-wide limits, per task name.
    let limits: [String: RateLimit]
    /// This worker, as it signs the tokens it issues when it is the refiller.
    let identity: String
    private let broker: BrokerSettings
    private let logger: Logger
    /// The connection tokens are taken on, while there is one.
    private let current = Mutex<Connection?>(nil)

    /// The cluster-wide limits of `tasks`; nil when there is none.
    init?(tasks: [String: TaskSettings], broker: BrokerSettings, identity: String, logger: Logger) {
        var limits: [String: RateLimit] = [:]
        for (name, settings) in tasks where settings.rateLimitScope == .cluster {
            if let limit = settings.rateLimit { limits[name] = limit }
        }
        guard !limits.isEmpty else { return nil }
        self.limits = limits
        self.identity = identity
        self.broker = broker
        self.logger = logger
    }

    /// Keeps the connection, stands for refiller and refills while elected, until cancelled (the worker stopped).
    /// Broker errors are logged and retried.
    func run() async {
        var attempt = 0
        while !Task.isCancelled {
            var connection: Connection?
            do {
                var connections = broker.connections
                for index in connections.indices { connections[index].heartbeat = Self.heartbeat }
                let opened = try await Connection.open(
                    anyOf: connections, startingAt: attempt, connectionName: "amqp-tasks rate limits \(identity)",
                    logger: logger)
                connection = opened
                let setup = try await opened.openChannel()
                for task in limits.keys.sorted() {
                    try await setup.declareQueue(Self.queue(task), durable: true, arguments: Self.queueArguments)
                }
                try? await setup.close()
                current.withLock { $0 = opened }
                // Each task has its own refiller: workers whose configurations limit different tasks all get tokens.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (task, limit) in limits {
                        group.addTask {
                            try await ExclusiveQueueLock(queue: Self.refillerLock(task), retryInterval: Self.retryInterval)
                                .take(on: opened) {
                                    self.logger.info("cluster rate limit of \(task): another worker refills its tokens; standing by")
                                }
                            try await self.refill(task, at: limit, on: opened)
                        }
                    }
                    try await group.next()
                }
            } catch is CancellationError {
            } catch {
                if !Task.isCancelled { logger.warning("cluster rate limits: \(error); trying again in \(Self.retryInterval)") }
            }
            current.withLock { $0 = nil }
            if let connection { await connection.close() }
            attempt += 1
            try? await Task.sleep(for: Self.retryInterval)
        }
    }

    /// Issues the tokens of `task` at `limit`, until the connection is lost (throws) or cancelled. Token k is due
    /// one interval after token k-1 was due (no drift); a refiller late by a whole interval or more (a stall) starts
    /// the schedule again from now, so it never catches up with a burst.
    private func refill(_ task: String, at limit: RateLimit, on connection: Connection) async throws {
        logger.notice("cluster rate limit of \(task): \(identity) refills its tokens at \(limit)")
        let channel = try await connection.openChannel()
        let queue = Self.queue(task)
        let interval = limit.interval
        var due = ContinuousClock.now
        var sequence = 0
        while true {
            if let error = connection.closedError { throw error }
            let now = ContinuousClock.now
            if due <= now {
                sequence += 1
                let token = RateLimitToken(refiller: identity, sequence: sequence, issuedAt: Date())
                try await channel.publish(
                    OutgoingMessage(
                        body: token.body, routingKey: queue, properties: BasicProperties(contentType: "application/json")))
                due = now - due >= interval ? now + interval : due + interval
            }
            // At most a second: a lost connection is noticed within a second.
            try await Task.sleep(until: min(due, ContinuousClock.now + .seconds(1)), clock: .continuous)
        }
    }

    /// Waits for a token of `task` and takes it; nil when `released` returned first (the task was revoked).
    /// Broker trouble is logged and the take tried again every `retryInterval`; throws `CancellationError` (a stop).
    func takeToken(for task: String, releasedBy released: @escaping @Sendable () async -> Void) async throws
        -> RateLimitToken?
    {
        // After a failed take the token queue is declared again: someone may have deleted it (the refiller's
        // tokens would go nowhere and this wait would never end).
        var declare = false
        while true {
            try Task.checkCancellation()
            guard let connection = current.withLock({ $0 }), connection.isOpen else {
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            do {
                return try await take(Self.queue(task), on: connection, declaring: declare, releasedBy: released)
            } catch where !(error is CancellationError) && !Task.isCancelled {
                logger.warning(
                    "could not take a token of the cluster-wide rate limit of \(task): \(error); trying again in \(Self.retryInterval)")
                declare = true
                try await Task.sleep(for: Self.retryInterval)
            }
        }
    }

    private enum Taken: Sendable {
        case token(Delivery)
        case released
        case ended
    }

    /// One take on a channel of its own: a prefetch-1 consumer of the token queue, until its first delivery or
    /// the release. Closing the channel returns a token delivered but not acknowledged.
    /// `declare`: declare the token queue first (it may have been deleted since the worker connected).
    private func take(
        _ queue: String, on connection: Connection, declaring declare: Bool,
        releasedBy released: @escaping @Sendable () async -> Void
    ) async throws -> RateLimitToken? {
        let channel = try await connection.openChannel()
        defer { Task { try? await channel.close() } }
        if declare { try await channel.declareQueue(queue, durable: true, arguments: Self.queueArguments) }
        try await channel.setPrefetch(1)
        let consumer = try await channel.consume(queue: queue)
        let taken = try await withThrowingTaskGroup(of: Taken.self) { group in
            group.addTask {
                try await withTaskCancellationHandler {
                    for try await delivery in consumer { return Taken.token(delivery) }
                    return Taken.ended
                } onCancel: {
                    Task { try? await channel.close() }
                }
            }
            group.addTask {
                await released()
                return Taken.released
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
        try Task.checkCancellation()
        switch taken {
        case .released:
            return nil
        case .ended:
            throw AMQPError(.closed, operation: "basic.consume", message: "the token queue \(queue) ended its consumer")
        case .token(let delivery):
            try await delivery.ack()
            let taken = Date()
            if var token = RateLimitToken.parse(delivery.body) {
                token.takenAt = taken
                return token
            }
            logger.warning("took a message of \(queue) that is not a token (\(delivery.body.count) bytes); it counts as one")
            return RateLimitToken(refiller: "unknown", sequence: Int(delivery.deliveryTag), issuedAt: taken, takenAt: taken)
        }
    }
}

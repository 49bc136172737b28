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
/// A task of such a name waits for a token before it runs. Each worker has one token consumer per such task it runs
/// (`consumeTokens`: a channel of its own, prefetch 1, manual acknowledgements, opened again on a new connection),
/// so it holds at most one token of the task, delivered and not acknowledged, however many of its slots wait. A
/// waiting slot is handed that token and acknowledges it (taken = used: a worker that dies after taking one loses
/// that start, never repeats it), then runs the task. A waiting task that is revoked stops waiting at once (a token
/// being handed to it goes to the next waiting slot). Only messages marked as tokens by a refiller
/// (`RateLimitToken.messageType`) count; any other message in the token queue is rejected.
///
/// The bound: in any window of T seconds the refiller issues at most `⌈rate × T⌉ + 1` tokens (token k within the
/// interval after it is due). The tasks started (tokens taken) in such a window are those issued in it, plus the
/// ones the queue held when it opened (at most `burst`), plus those the workers' token consumers held then
/// (delivered, not yet taken: at most one per worker, W): at most `⌈rate × T⌉ + 1 + burst + W`, plus one for each
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
    /// How often a worker that is not the refiller tries to become it.
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
    let logger: Logger
    /// The tokens of each task's token consumer, handed to the slots that wait for one.
    let handouts: [String: TokenHandout]
    /// The pauses before each attempt after a failure (the connection, the token queues' declare, a token consumer),
    /// growing while the failures repeat, as a worker's consumers restart: a token queue that someone declared with
    /// other arguments answers 406 at every attempt, and must not fill the log at one warning a second.
    let pauses: ReconnectPolicy

    /// The cluster-wide limits of `tasks`; nil when there is none. `running`: the tasks this worker runs (registers).
    /// It stands for refiller of every limit, but has a token consumer only for the limited tasks it runs: a worker
    /// that shares the configuration but never runs a task would otherwise hold one of its tokens for nothing (at a
    /// slow rate, the one a worker running it waits for).
    init?(
        tasks: [String: TaskSettings], running: Set<String>, broker: BrokerSettings, identity: String,
        pauses: ReconnectPolicy, logger: Logger
    ) {
        var limits: [String: RateLimit] = [:]
        for (name, settings) in tasks where settings.rateLimitScope == .cluster {
            if let limit = settings.rateLimit { limits[name] = limit }
        }
        guard !limits.isEmpty else { return nil }
        self.limits = limits
        self.handouts = limits.filter { running.contains($0.key) }.mapValues { _ in TokenHandout() }
        self.identity = identity
        self.broker = broker
        self.pauses = pauses
        self.logger = logger
    }

    /// Keeps the connection, stands for refiller and refills while elected, until cancelled (the worker stopped).
    /// Broker errors are logged and retried after `pauses`, which grow while the attempts fail before the token
    /// queues are declared.
    func run() async {
        var attempt = 0
        var failures = 0
        while !Task.isCancelled {
            var connection: Connection?
            var failure: Error?
            do {
                var connections = broker.connections
                for index in connections.indices {
                    connections[index].heartbeat = Self.heartbeat
                    connections[index].consumes = true  // it consumes tokens
                }
                let opened = try await Connection.open(
                    anyOf: connections, startingAt: attempt, connectionName: "amqp-tasks rate limits \(identity)",
                    logger: logger)
                connection = opened
                let setup = try await opened.openChannel()
                for task in limits.keys.sorted() {
                    try await setup.declareQueue(Self.queue(task), durable: true, arguments: Self.queueArguments)
                }
                try? await setup.close()
                failures = 0
                // Each task has its own refiller: workers whose configurations limit different tasks all get tokens.
                // Each has one token consumer in this worker, whatever the number of slots waiting for its tokens.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (task, limit) in limits {
                        if handouts[task] != nil { group.addTask { try await self.consumeTokens(of: task, on: opened) } }
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
                failure = error
            }
            if let connection { await connection.close() }
            attempt += 1
            if Task.isCancelled { return }
            if let failure {
                failures += 1
                let pause = pauses.delay(beforeAttempt: failures)
                logger.warning(
                    "cluster rate limits: \(failure); trying again in \(String(cFormat: "%.3f", pause.secondsValue)) s (attempt \(failures))")
                try? await Task.sleep(for: pause)
            } else {
                try? await Task.sleep(for: pauses.delay(beforeAttempt: 1))
            }
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
                        body: token.body, routingKey: queue,
                        properties: BasicProperties(contentType: "application/json", type: RateLimitToken.messageType)))
                due = now - due >= interval ? now + interval : due + interval
            }
            // At most a second: a lost connection is noticed within a second.
            try await Task.sleep(until: min(due, ContinuousClock.now + .seconds(1)), clock: .continuous)
        }
    }

    /// Waits for a token of `task` and takes it; nil when `released` returned first (the task was revoked).
    /// The token comes from this worker's token consumer of the task (`consumeTokens`), whichever connection it is
    /// on now; a token whose acknowledgement fails (its channel ended: the broker requeued it) is logged and the next
    /// one waited for. Throws `CancellationError` (a stop).
    func takeToken(for task: String, releasedBy released: @escaping @Sendable () async -> Void) async throws
        -> RateLimitToken?
    {
        guard let handout = handouts[task] else {
            throw AMQPError(.invalidArgument, operation: "takeToken", message: "\(task) has no cluster-wide rate limit")
        }
        enum Woken: Sendable {
            case token(HeldToken?)
            case released
        }
        while true {
            try Task.checkCancellation()
            let handed: HeldToken?? = await withTaskGroup(of: Woken.self) { group in
                group.addTask { .token(await handout.next()) }
                group.addTask {
                    await released()
                    return .released
                }
                let first = await group.next()!
                group.cancelAll()
                // The wait that lost may have been handed a token meanwhile: it goes to the next waiting slot.
                for await other in group { if case .token(let token?) = other { handout.giveBack(token) } }
                if case .token(let token) = first { return .some(token) }
                return nil
            }
            // A stop cancels both waits: whichever ended first, the task goes back to its queue (not REVOKED).
            if Task.isCancelled {
                if case let held?? = handed { handout.giveBack(held) }
                throw CancellationError()
            }
            guard let handed else { return nil }  // released: the task was revoked
            guard let held = handed else { continue }  // `next` ends without a token only when cancelled
            do {
                try await held.delivery.ack()
            } catch {
                logger.warning(
                    "could not take token \(held.token) of the cluster-wide rate limit of \(task): \(error); waiting for the next")
                continue
            }
            var token = held.token
            token.takenAt = Date()
            return token
        }
    }
}

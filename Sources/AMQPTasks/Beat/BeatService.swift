import AMQP
import FoundationEssentials
import Logging
import ServiceLifecycle

/// The periodic scheduler (`amqp-worker --beat`): sends each tick of `[schedules."NAME"]` once, however many
/// instances run it.
///
/// Every instance keeps its own connection (short heartbeat, so a silent host loses it within seconds) and tries
/// every second to take the lock `BeatQueues.leader`, an exclusive queue; the one that holds it (the leader) takes
/// the records of ticks sent from each schedule's state queue (holding them unacknowledged), writes its name to
/// `BeatQueues.leaderInfo`, and then sends ticks. Each tick's task, the schedule's new record and the
/// acknowledgement of the records it supersedes are one AMQP transaction, on the connection that holds the lock:
/// a leader that dies before the commit did none of it (its records return to their queues for the next leader),
/// and once its connection is gone it can send nothing more. A missed tick (every instance down, or the leader late) is sent once, the
/// latest one only (`TickPlanner`).
///
/// A swift-service-lifecycle `Service`: it runs until its group shuts down (closing its connection hands the lock
/// to another instance at once) and never returns early; broker errors are logged and retried.
public final class BeatService: Service, Sendable {
    public let configuration: TasksConfiguration
    /// This instance's name, as `amqp-task schedules` shows the leader.
    public let identity: String
    /// Heartbeat of the scheduler's connection: a leader whose host goes silent loses the lock after about twice
    /// this.
    public let heartbeat: Duration
    /// How often an instance that does not lead tries to take over.
    public let retryInterval: Duration
    private let logger: Logger
    /// How often a leader with no tick to send rewrites its note and renews the records it holds.
    static let refreshInterval: Duration = .seconds(30)

    public init(
        configuration: TasksConfiguration, identity: String, heartbeat: Duration = .seconds(5),
        retryInterval: Duration = .seconds(1), logger: Logger = Logger(label: "amqp-tasks.beat")
    ) {
        self.configuration = configuration
        self.identity = identity
        self.heartbeat = heartbeat
        self.retryInterval = retryInterval
        self.logger = logger
    }

    public func run() async throws {
        guard !configuration.schedules.isEmpty else {
            logger.warning("beat: no [schedules.\"NAME\"] in the configuration; nothing to send")
            try? await gracefulShutdown()
            return
        }
        logger.info("beat: \(identity) schedules \(configuration.schedules.keys.sorted().joined(separator: ", "))")
        await cancelWhenGracefulShutdown {
            await self.runUntilCancelled()
        }
    }

    private func runUntilCancelled() async {
        var attempt = 0
        var failuresToConnect = 0
        while !Task.isCancelled {
            var connection: Connection?
            do {
                var connections = configuration.broker.connections
                for index in connections.indices {
                    connections[index].heartbeat = heartbeat
                    connections[index].consumes = true  // it reads its state queues
                }
                connection = try await Connection.open(
                    anyOf: connections, startingAt: attempt, connectionName: "amqp-tasks beat \(identity)",
                    logger: logger)
                failuresToConnect = 0
                try await takeLock(on: connection!)
                try await lead(on: connection!)
            } catch is CancellationError {
            } catch {
                if connection == nil { failuresToConnect += 1 }
                if !Task.isCancelled { logger.warning("beat: \(error); trying again") }
            }
            if let connection { await connection.close() }
            attempt += 1
            // Reconnect at once-a-second pace after losing a connection; back off to 30 s while the broker is away.
            let backoff = retryInterval * (1 << min(failuresToConnect, 5))
            try? await Task.sleep(for: min(backoff, max(retryInterval, .seconds(30))))
        }
    }

    /// Returns once this instance holds the lock; retries every `retryInterval` while another one does.
    private func takeLock(on connection: Connection) async throws {
        try await ExclusiveQueueLock(queue: BeatQueues.leader, retryInterval: retryInterval).take(on: connection) {
            logger.info("beat: another instance leads; standing by")
        }
    }

    private func lead(on connection: Connection) async throws {
        let schedules = configuration.schedules.values.sorted { $0.name < $1.name }
        let since = Date()
        let setup = try await connection.openChannel()
        try await setup.declareQueue(BeatQueues.holder(identity), durable: false, exclusive: true, autoDelete: false)
        try await setup.declareQueue(BeatQueues.leaderInfo, durable: true, arguments: BeatQueues.leaderInfoArguments)
        for schedule in schedules {
            try await setup.declareQueue(BeatQueues.state(schedule.name), durable: true, arguments: BeatQueues.stateArguments)
        }
        let transaction = try await connection.openChannel()
        try await transaction.selectTransactions()
        var held = HeldRecords()
        for schedule in schedules { try await held.take(schedule.name, on: transaction) }
        let unrecorded = schedules.filter { held.lastTick($0.name) == nil }
        if !unrecorded.isEmpty {
            // A reader (amqp-task schedules) may hold a record for a moment: look once more before taking a schedule
            // for new (which would skip its catch-up tick, never repeat one).
            try await Task.sleep(for: retryInterval)
            for schedule in unrecorded { try await held.take(schedule.name, on: transaction) }
        }

        let now = Date()
        var planners = schedules.map { TickPlanner(timing: $0.timing, lastSent: held.lastTick($0.name), now: now) }
        func leaderInfo() -> OutgoingMessage {
            var lastTicks: [String: Date] = [:]
            for (schedule, planner) in zip(schedules, planners) { lastTicks[schedule.name] = planner.lastSent }
            return BeatRecord(writer: identity, since: since, lastTicks: lastTicks).outgoing(to: BeatQueues.leaderInfo)
        }
        try await transaction.publish(leaderInfo())
        try await transaction.commit()
        var infoWritten = ContinuousClock.now
        logger.notice("beat: \(identity) leads; sending \(schedules.count) schedule(s)")
        for (schedule, planner) in zip(schedules, planners) {
            let last = planner.lastSent.map(TickID.timestamp) ?? "never"
            let next = planner.due(at: now).map { "now (catching up \(TickID.timestamp($0)))" }
                ?? planner.nextTick(after: now).map(TickID.timestamp) ?? "never"
            logger.info("beat: \(schedule.name): \(schedule.timing), last sent \(last), next \(next)")
        }
        let router = TaskRouter(configuration: configuration)
        var checks = try await connection.openChannel()
        var reported: Set<String> = []  // ticks whose missing destination was logged: once each, not every second
        while true {
            if let error = connection.closedError { throw error }
            for index in schedules.indices {
                guard let tick = planners[index].due(at: Date()) else { continue }
                let schedule = schedules[index]
                let beatTick = BeatTick(schedule: schedule, tick: tick, router: router)
                guard try await destinationExists(beatTick, checks: &checks, on: connection, reported: &reported) else {
                    continue
                }
                // One transaction: the task, its record, the older records acknowledged, the leader's note.
                try await transaction.publish(beatTick.message(origin: identity, now: Date()))
                try await transaction.publish(
                    BeatRecord(schedule: schedule.name, tick: tick, taskId: beatTick.taskId, writer: identity)
                        .outgoing(to: BeatQueues.state(schedule.name)))
                try await held.acknowledgeOlder(schedule.name, than: tick, on: transaction)
                planners[index].sent(tick)
                try await transaction.publish(leaderInfo())
                let returned = try await transaction.commit()
                infoWritten = ContinuousClock.now
                reported.removeAll()
                if let unroutable = returned.first {
                    // Known only once committed: the tick is recorded (it is not sent again), but not silently lost.
                    logger.error(
                        "beat: \(schedule.name) tick \(TickID.timestamp(tick)) was dropped by the broker, no queue took \(schedule.task)[\(beatTick.taskId)]: \(unroutable.message); bind a queue to the exchange for that routing key (a `bindings` entry of its [[queues]] in the configuration, then amqp-task declare)")
                }
                held.superseded(schedule.name, before: tick)
                try await held.take(schedule.name, on: transaction)
                logger.info("beat: sent \(schedule.name) tick \(TickID.timestamp(tick)): \(schedule.task)[\(beatTick.taskId)]")
            }
            if ContinuousClock.now - infoWritten > Self.refreshInterval {
                // No tick for a while: rewrite the note (a reader may have returned an older copy over it) and renew
                // the held records, so that none stays unacknowledged past the broker's consumer_timeout (which
                // counts basic.get deliveries too, and would close the transaction channel).
                for (schedule, planner) in zip(schedules, planners) {
                    guard let last = planner.lastSent else { continue }
                    try await transaction.publish(
                        BeatRecord(schedule: schedule.name, tick: last, taskId: TickID.id(schedule: schedule.name, tick: last), writer: identity)
                            .outgoing(to: BeatQueues.state(schedule.name)))
                    try await held.acknowledgeOlder(schedule.name, than: .distantFuture, on: transaction)
                }
                try await transaction.publish(leaderInfo())
                try await transaction.commit()
                infoWritten = ContinuousClock.now
                for (schedule, planner) in zip(schedules, planners) where planner.lastSent != nil {
                    held.superseded(schedule.name, before: .distantFuture)
                    try await held.take(schedule.name, on: transaction)
                }
            }
            let now = Date()
            let next = planners.compactMap { $0.nextTick(after: now) }.min()
            // At most a second: a clock that jumps, or a lost connection, is noticed within a second.
            let wait = min(max(next.map { $0.timeIntervalSince(Date()) } ?? 1, 0.005), 1)
            try await Task.sleep(for: .seconds(wait))
        }
    }

    /// True when the tick's queue or exchange exists; otherwise logs why the tick is not sent (it is not recorded
    /// either: once the destination exists, the latest due tick goes).
    private func destinationExists(
        _ tick: BeatTick, checks: inout Channel, on connection: Connection, reported: inout Set<String>
    ) async throws -> Bool {
        let (exchange, routingKey) = tick.destination
        do {
            if exchange.isEmpty {
                _ = try await checks.inspectQueue(routingKey)
            } else {
                try await checks.checkExchange(exchange)
            }
            return true
        } catch let error as AMQPError where error.replyCode == .notFound {
            let what = exchange.isEmpty ? "queue \(routingKey)" : "exchange \(exchange)"
            if reported.insert(tick.taskId).inserted {
                logger.error(
                    "beat: \(tick.schedule.name) tick \(TickID.timestamp(tick.tick)) not sent: \(what) does not exist; declare it (amqp-task declare, or start a worker that consumes it)")
            }
            checks = try await connection.openChannel()
            return false
        }
    }
}

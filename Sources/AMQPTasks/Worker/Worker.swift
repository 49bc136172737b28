import AMQP
import Foundation
import Logging

/// Settings of a `Worker`, with defaults at each property.
public struct WorkerConfiguration: Sendable {
    /// The broker, as an `amqp://` or `amqps://` URL.
    public var url: String
    /// Queues to consume. Each is declared (durable, classic, no arguments, as Celery declares `celery`) unless it
    /// exists already, in which case it is used as it is.
    public var queues: [String] = ["celery"]
    /// Consumers per queue; each holds at most `prefetch` tasks.
    public var concurrency: Int = 1
    /// Unacknowledged tasks per consumer. 1 (the default) means a consumer holds exactly the task it runs, so a
    /// long task never delays others queued behind it and a crash loses at most that one task (to redelivery).
    /// Above 1, tasks wait in the consumer while another runs.
    public var prefetch: UInt16 = 1
    /// The worker's node name (Celery's `-n`). The default, `amqp-worker-<pid>@<host>`, is unique per process, so
    /// remote control and Flower tell workers on one host apart.
    public var hostname: String = "amqp-worker-\(getpid())@\(ProcessInfo.processInfo.hostName)"
    /// Retry policy for handlers that throw `TaskRetry` without their own countdown.
    public var retryPolicy = RetryPolicy()
    /// Publish final results (SUCCESS, FAILURE, REVOKED) as persistent messages (Celery's `result_persistent`). On
    /// (the default), a result the broker confirmed survives a broker restart, so "acknowledged only when the outcome
    /// is safely recorded" holds across one; off, results are transient as Celery's rpc backend sends them by
    /// default: faster (no disk sync per result), but a broker restart loses results not yet consumed.
    public var persistentResults = true
    /// Task messages with a larger body are not decoded: they go to `<queue>.dead` with reason
    /// `message-too-large`. 32 MiB by default; RabbitMQ's own `max_message_size` (128 MiB by default in 3.10,
    /// 16 MiB from 4.0) caps what reaches the queue at all.
    public var maxMessageSize = Self.defaultMaxMessageSize
    public static let defaultMaxMessageSize = 32 << 20
    /// A result whose encoded body is larger is replaced by a FAILURE (`ResultTooLarge`) saying how large it was,
    /// so an outsized result never makes the broker close the channel. 16 MiB by default.
    public var maxResultSize = Self.defaultMaxResultSize
    public static let defaultMaxResultSize = 16 << 20
    /// How many times one worker tries to record a task's outcome (result, retry, dead letter, follow-up tasks)
    /// before it gives up on it: the task then goes to `<queue>.dead` with reason `outcome-not-recorded`, and the
    /// caller gets a FAILURE where a result can still be delivered. Never a loop.
    public var recordAttempts = Self.defaultRecordAttempts
    public static let defaultRecordAttempts = 3
    /// Send a STARTED state before running each task (Celery's `task_track_started`).
    public var sendStarted = false
    /// Publish Celery events to `celeryev` (Celery's `-E`): worker online/heartbeat/offline and task events.
    public var sendEvents = false
    /// Seconds between `worker-heartbeat` events (Celery's 2 s).
    public var eventHeartbeat: Double = 2
    /// Seconds a warm shutdown lets running tasks finish before they are interrupted and requeued.
    public var gracePeriod: Double = 30
    /// Longest pause between reconnection attempts, in seconds (backoff starts at 1 s and doubles, half of it random).
    public var maxReconnectDelay: Double = 30
    /// Per-task settings: retries, backoff, time limit, ignore_result (from `[tasks."NAME"]`).
    public var tasks: [String: TaskSettings] = [:]
    /// Exchanges, queues and bindings to declare at start (from the configuration file).
    public var topology: TasksConfiguration?
    /// Which remote-control commands (`celery inspect`, `celery control`, Flower) the worker obeys: by default only
    /// the read-only ones; see `RemoteControlAccess`.
    public var remoteControl: RemoteControlAccess = .readOnly

    public init(url: String) { self.url = url }

    /// The settings of a configuration file's `[broker]`, `[worker]` and `[tasks]`; its topology is declared at start.
    public init(configuration: TasksConfiguration) {
        url = configuration.broker.connectionURL
        let settings = configuration.worker
        queues = settings.queues.isEmpty ? ["celery"] : settings.queues
        concurrency = settings.concurrency
        prefetch = UInt16(clamping: settings.prefetch)
        gracePeriod = settings.gracePeriod
        if let hostname = settings.hostname { self.hostname = hostname }
        sendStarted = settings.sendStarted
        persistentResults = settings.resultPersistent
        maxMessageSize = settings.maxMessageSize
        maxResultSize = settings.maxResultSize
        recordAttempts = settings.recordAttempts
        remoteControl = settings.remoteControl
        if let maxRetries = settings.maxRetries { retryPolicy.maxRetries = maxRetries }
        tasks = configuration.tasks
        topology = configuration
    }

    /// The retry policy of one task: the worker's, with the task's `max_retries` and `retry_backoff`.
    func retryPolicy(for task: String) -> RetryPolicy {
        var policy = retryPolicy
        guard let settings = tasks[task] else { return policy }
        if let maxRetries = settings.maxRetries { policy.maxRetries = maxRetries }
        if let backoff = settings.retryBackoff {
            policy.backoff = backoff > 0
            if backoff > 0 { policy.baseDelay = backoff }
        }
        return policy
    }
}

/// Consumes task queues and runs each task exactly once at a time per consumer, as Celery does with
/// `task_acks_late = True` and `worker_prefetch_multiplier = 1`.
///
/// A task is acknowledged only after its outcome is safely recorded: the result message published and confirmed,
/// the retry republished and confirmed, or the bad message copied to `<queue>.dead` and confirmed. A worker that
/// dies mid-task therefore loses nothing: the broker redelivers the task, flagged `redelivered`.
public final class Worker: Sendable {
    public let configuration: WorkerConfiguration
    public let registry: TaskRegistry
    let logger: Logger
    private let control = WorkerControl()
    let state = WorkerState()
    /// Failed attempts to record outcomes, per task (see `WorkerConfiguration.recordAttempts`).
    let recordAttempts = RecordAttempts()

    public init(
        configuration: WorkerConfiguration, registry: TaskRegistry, logger: Logger = Logger(label: "amqp-tasks.worker")
    ) {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
    }

    /// Runs until `stop()`: connects, consumes, and reconnects with backoff when the connection is lost.
    public func run() async throws {
        var attempt = 0
        while await !control.isStopping {
            do {
                let connection = try await connect(attempt: attempt)
                attempt = 0
                try await serve(connection)
                await connection.close()
            } catch let problem as Topology.Problem {
                // Reconnecting cannot fix a topology that contradicts the broker: say so and stop.
                throw problem
            } catch {
                if await control.isStopping { break }
                attempt += 1
                let pause = ReconnectPolicy(initialDelay: 1, maxDelay: configuration.maxReconnectDelay)
                    .delay(beforeAttempt: attempt)
                logger.error("\(error); reconnecting in \(String(format: "%.1f", pause)) s (attempt \(attempt))")
                try? await control.sleep(seconds: pause)
            }
        }
        // Exec tasks stopped by the shutdown get their kill_timeout; their groups' last SIGKILL comes before we exit.
        await GroupEnding.waitForPendingKills()
        logger.info("worker \(configuration.hostname) stopped")
    }

    /// Starts a warm shutdown: consumers stop taking tasks, running tasks get `gracePeriod` seconds to finish,
    /// then they are interrupted and their messages requeued. `run()` returns when done.
    public func stop() {
        Task { await control.stop() }
    }

    /// Connects to the first broker that answers; with several URLs (a cluster's nodes, comma-separated), each
    /// reconnection starts at the next one, so a worker moves off a node that went down.
    private func connect(attempt: Int) async throws -> Connection {
        let connection = try await Connection.open(
            anyOf: [configuration.url], startingAt: attempt,
            connectionName: "amqp-worker \(configuration.hostname)", logger: logger)
        if let topology = self.configuration.topology {
            try await Topology.declare(topology, on: connection)
        }
        let setup = try await connection.openChannel()
        for queue in self.configuration.queues {
            // As Celery declares it (durable, no arguments), unless it exists.
            try await Topology.declareQueueIfMissing(queue, on: connection)
            let quorum = configuration.topology?.queue(named: queue)?.kind == .quorum
            try await DeadLetters.declare(for: queue, quorum: quorum, on: setup)
            try await DelayQueues.bindTarget(queue, on: setup)
        }
        try await setup.close()
        logger.info(
            "worker \(self.configuration.hostname) consuming \(self.configuration.queues.joined(separator: ", ")) with concurrency \(self.configuration.concurrency), prefetch \(self.configuration.prefetch); tasks: \(registry.names.joined(separator: ", "))"
        )
        return connection
    }

    /// Runs the consumers until the connection is lost (throws) or a stop finishes them (returns).
    private func serve(_ connection: Connection) async throws {
        await control.reset()
        let events = try await startEvents(connection)
        let slots = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for queue in configuration.queues {
                    for _ in 0..<max(1, configuration.concurrency) {
                        group.addTask { try await self.runConsumer(queue: queue, connection: connection, events: events) }
                    }
                }
                group.addTask { try await self.runRemoteControl(connection) }
                if let events {
                    group.addTask { await self.sendHeartbeats(events) }
                }
                // The first consumer to fail (a lost connection) ends the others too, so the worker reconnects.
                while try await group.next() != nil {}
            }
        }
        await control.track(slots, gracePeriod: configuration.gracePeriod)
        try await slots.value
        await events?.workerEvent("worker-offline")
    }

    /// The event publisher on its own channel, after `worker-online`; nil unless events are on.
    private func startEvents(_ connection: Connection) async throws -> EventPublisher? {
        guard configuration.sendEvents else { return nil }
        let channel = try await connection.openChannel()
        try await EventPublisher.declare(on: channel)
        let events = EventPublisher(channel: channel, hostname: configuration.hostname, state: state)
        await events.workerEvent("worker-online", freq: configuration.eventHeartbeat)
        return events
    }

    private func sendHeartbeats(_ events: EventPublisher) async {
        while await !control.isStopping, !Task.isCancelled {
            try? await control.sleep(seconds: configuration.eventHeartbeat)
            if await control.isStopping || Task.isCancelled { break }
            await events.workerEvent("worker-heartbeat", freq: configuration.eventHeartbeat)
        }
    }

    /// Answers remote-control requests; a clash over the node name disables it, never the worker.
    private func runRemoteControl(_ connection: Connection) async throws {
        try await RemoteControl.serve(worker: self, on: connection, control: control)
    }

    /// One consumer slot of `queue`, for as long as the connection lasts. When the broker closes the consumer's
    /// channel (a message it refused, a queue on a node that went down) or cancels the consumer (its queue was
    /// deleted), the slot comes back on a new channel after a pause, saying so in the log: a worker never goes on
    /// with fewer consumers than it was started with. A lost connection ends it (the worker reconnects).
    private func runConsumer(queue: String, connection: Connection, events: EventPublisher?) async throws {
        var restarts = 0
        while true {
            var lost: AMQPError?
            let progress = ConsumerProgress()
            do {
                if try await consume(queue: queue, connection: connection, events: events, progress: progress) { return }
            } catch let error as AMQPError
                where connection.isOpen && (error.isChannelLevel || error.kind == .consumerCancelledByServer)
            {
                lost = error
            }
            // The connection closed on purpose (a lost one throws above), or a stop began: nothing to restart.
            if !connection.isOpen { return }
            if await control.isStopping { return }
            // A consumer that served tasks since its last restart starts its pauses anew.
            if progress.processed > 0 { restarts = 0 }
            restarts += 1
            let pause = ReconnectPolicy(initialDelay: 1, maxDelay: configuration.maxReconnectDelay)
                .delay(beforeAttempt: restarts)
            logger.error(
                "the consumer of \(queue) stopped: \(lost.map { "\($0)" } ?? "its channel was closed"); starting it again in \(String(format: "%.1f", pause)) s (restart \(restarts))"
            )
            try? await control.sleep(seconds: pause)
            let queueGone = lost?.kind == .consumerCancelledByServer
                || (lost?.replyCode == .notFound && lost?.isNodeDown == false)
            if queueGone {
                // Its queue was deleted: declare it again as the configuration says (type, arguments, bindings),
                // or as Celery declares it.
                if let topology = configuration.topology, topology.queue(named: queue) != nil {
                    try await Topology.declare(topology, on: connection)
                } else {
                    try await Topology.declareQueueIfMissing(queue, on: connection)
                }
                let setup = try await connection.openChannel()
                try await DelayQueues.bindTarget(queue, on: setup)
                try? await setup.close()
            }
        }
    }

    /// Consumes on a new channel until the consumer ends; true when it ended because a stop cancelled it.
    private func consume(
        queue: String, connection: Connection, events: EventPublisher?, progress: ConsumerProgress
    ) async throws -> Bool {
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        try await channel.setPrefetch(configuration.prefetch)
        let consumer = try await channel.consume(queue: queue)
        guard await control.register(consumer) else { return true }
        let processor = TaskProcessor(worker: self, channel: channel, queue: queue, events: events)
        let ended: Result<Void, Error>
        do {
            for try await delivery in consumer {
                // Deliveries still buffered when the broker closed the channel were requeued by the close: running
                // them would run them twice.
                guard consumer.channelIsOpen else { continue }
                await processor.process(delivery)
                progress.processed += 1
            }
            ended = .success(())
        } catch {
            ended = .failure(error)
        }
        await control.unregister(consumer)
        if connection.isOpen { try? await channel.close() }
        try ended.get()
        return await control.isStopping
    }
}

/// How many deliveries one consumer slot processed on its current channel (one task reads and writes it).
private final class ConsumerProgress: @unchecked Sendable {
    var processed = 0
}

/// Shutdown coordination: the consumers to cancel, the grace period, the pause between reconnects.
actor WorkerControl {
    private(set) var isStopping = false
    private var consumers: [Consumer] = []
    private var slots: Task<Void, Error>?
    private var gracePeriod: Double = 30
    private var sleepers: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextSleeper = 0

    /// Remembers a consumer so a stop can cancel it; false when a stop already began.
    func register(_ consumer: Consumer) async -> Bool {
        if isStopping {
            try? await consumer.cancel()
            return false
        }
        consumers.append(consumer)
        return true
    }

    /// Forgets a consumer that ended.
    func unregister(_ consumer: Consumer) {
        consumers.removeAll { $0.tag == consumer.tag }
    }

    /// Forgets the consumers of a lost connection, before a new one starts its own.
    func reset() { consumers.removeAll() }

    func track(_ slots: Task<Void, Error>, gracePeriod: Double) {
        self.slots = slots
        self.gracePeriod = gracePeriod
    }

    func stop() async {
        guard !isStopping else { return }
        isStopping = true
        for sleeper in sleepers.values { sleeper.resume() }
        sleepers.removeAll()
        for consumer in consumers { try? await consumer.cancel() }
        guard let slots else { return }
        let grace = gracePeriod
        Task {
            try? await Task.sleep(for: .clampedSeconds(grace))
            slots.cancel()
        }
    }

    /// Sleeps, but wakes at once when a stop begins. Any number of tasks may sleep at once.
    func sleep(seconds: Double) async throws {
        guard !isStopping else { return }
        let id = nextSleeper
        nextSleeper += 1
        let timer = Task {
            try await Task.sleep(for: .clampedSeconds(seconds))
            self.wake(id)
        }
        // A cancelled sleeper (its connection was lost, so its task group ends) wakes at once too.
        await withTaskCancellationHandler {
            await withCheckedContinuation { sleepers[id] = $0 }
        } onCancel: {
            timer.cancel()
            Task { await self.wake(id) }
        }
        timer.cancel()
    }

    private func wake(_ id: Int) {
        sleepers.removeValue(forKey: id)?.resume()
    }
}

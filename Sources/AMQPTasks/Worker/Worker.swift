import AMQP
import FoundationEssentials
import Glibc
import Logging
import Metrics
import Tracing
import ServiceLifecycle

/// Consumes task queues and runs each task exactly once at a time per consumer, as Celery does with
/// `task_acks_late = True` and `worker_prefetch_multiplier = 1`.
///
/// A task is acknowledged only after its outcome is safely recorded: the result message published and confirmed,
/// the retry republished and confirmed, or the bad message copied to `<queue>.dead` and confirmed. A worker that
/// dies mid-task therefore loses nothing: the broker redelivers the task, flagged `redelivered`. A redelivery to the
/// same worker never runs a task twice in it (`DeliveryMemory`), and a task that runs for half the broker's
/// `consumer_timeout` goes into custody (`TaskCustody`), so the broker does not hand it to another worker meanwhile.
///
/// A worker consumes each queue with `concurrency` consumer slots, each its own channel; remote control and autoscale
/// reshape them while it runs (`ConsumerSlots`).
///
/// A worker is a swift-service-lifecycle `Service`: run it in a `ServiceGroup` beside your other services, and a
/// graceful shutdown of the group is a warm shutdown of the worker (`stop()`); `shutdownNow()` is the cold one.
public final class Worker: Service, Sendable {
    public let configuration: WorkerConfiguration
    public let registry: TaskRegistry
    /// The middleware every task goes through, after the worker's own (logging, events, revocation).
    public let middleware: [any TaskMiddleware]
    let logger: Logger
    private let control = WorkerControl()
    let state = WorkerState()
    /// This worker object, among all others and its own earlier runs (it signs what it writes to `RevokeLog`).
    let instance = UUID().uuidString
    /// Which Celery events the worker sends now: `-E`, then `enable_events` and `disable_events` (remote control).
    let eventToggles: EventToggles
    /// Failed attempts to record outcomes, per task (see `WorkerConfiguration.recordAttempts`).
    let recordAttempts = RecordAttempts()
    /// The deliveries this worker recorded or runs now, so a redelivery never runs a task twice in it.
    let deliveries = DeliveryMemory()
    /// How many tasks went into custody, and how often their copies were renewed.
    let custodyTally = CustodyTally()
    /// Names this worker's custody queue, the same across its reconnections.
    private let custodyInstance = CustodyQueue.newInstance()
    /// The process groups of the exec commands this worker runs (a cold shutdown kills them at once).
    let execGroups = ExecGroups()
    /// Why the worker stopped to be restarted, once abandoned handlers piled up (see `maxAbandonedHandlers`).
    let restart = RestartDecision()
    /// Whether the worker is connected and which queues it consumes (`status`).
    private let statusTracker = WorkerStatusTracker()
    /// The queues consumed and the consumer slots per queue now, as remote control and autoscale change them.
    let slots: ConsumerSlots
    /// Where the worker's metrics go (`TaskMetricNames`).
    let metricsFactory: any MetricsFactory
    /// Which tracer traces the tasks (`TaskTracingMiddleware`).
    let tracing: TaskTracing
    /// The rate limits kept by all workers together (`rate_limit_scope = "cluster"`), if any.
    let clusterRateLimits: ClusterRateLimits?

    /// - Parameter tracer: traces every handler run and the tasks sent on its behalf (see "Tracing" in the README);
    ///   nil (the default) means the process's bootstrapped one, `InstrumentationSystem.tracer` (a no-op unless
    ///   bootstrapped).
    public init(
        configuration: WorkerConfiguration, registry: TaskRegistry, middleware: [any TaskMiddleware] = [],
        logger: Logger = Logger(label: "amqp-tasks.worker"), metricsFactory: any MetricsFactory = MetricsSystem.factory,
        tracer: (any Tracer)? = nil
    ) {
        self.tracing = TaskTracing(tracer)
        self.slots = ConsumerSlots(configuration: configuration)
        self.eventToggles = EventToggles(enabled: configuration.sendEvents)
        self.metricsFactory = metricsFactory
        self.configuration = configuration
        self.registry = registry
        self.middleware = middleware
        self.logger = logger
        for (name, settings) in configuration.tasks where settings.rateLimitScope == .worker {
            state.rateLimits.set(settings.rateLimit, for: name)
        }
        self.clusterRateLimits = ClusterRateLimits(
            tasks: configuration.tasks, running: Set(registry.names), broker: configuration.broker,
            identity: "\(configuration.hostname)/\(UUID().shortLowercasedString)",
            pauses: ReconnectPolicy(initialDelay: .seconds(1), maxDelay: configuration.maxReconnectDelay), logger: logger)
    }

    /// Whether the worker is connected to the broker and consumes every queue it should now (those configured, plus
    /// those `add_consumer` added, minus those `cancel_consumer` cancelled): what a health check
    /// (`amqp-worker --metrics-port`'s `/healthz`) answers from.
    public var status: WorkerStatus { statusTracker.status(queues: slots.shape.queues) }

    /// Runs until `stop()`, `shutdownNow()` or a graceful shutdown of its `ServiceGroup`: connects, consumes, and
    /// reconnects with backoff when the connection is lost. Returns after a warm shutdown; throws
    /// `WorkerShutdown.cold` after a cold one, whose running tasks were requeued, not finished.
    ///
    /// Cancelling the task that runs it (as a `ServiceGroup` does when another service fails) is a cold shutdown;
    /// `run()` then throws `CancellationError`.
    public func run() async throws {
        state.watchdog.setPolicy(
            HandlerWatchdog.Policy(maxAbandoned: configuration.maxAbandonedHandlers) { [weak self] reason in
                self?.stopForRestart(reason)
            })
        defer { restart.workerEnded() }
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await ExecGroups.$current.withValue(execGroups) { try await runUntilStopped() }
            } onGracefulShutdown: {
                self.logger.notice("graceful shutdown: warm shutdown (grace \(self.configuration.gracePeriod))")
                self.stop()
            }
        } onCancel: {
            self.shutdownNow()
        }
        if Task.isCancelled { throw CancellationError() }
        if await control.isCold { throw WorkerShutdown.cold }
        if let reason = restart.reason { throw WorkerShutdown.restartNeeded(reason: reason) }
    }

    /// Abandoned handlers piled up (called from the watchdog's thread): stop taking tasks and stop as in a warm
    /// shutdown, so `run()` throws `WorkerShutdown.restartNeeded`. If the worker cannot even do that (its threads
    /// are all held), the process exits with `WorkerShutdown.restartExitStatus` by itself; unacknowledged tasks go
    /// back to their queues when its connection closes. A worker already stopping just goes on.
    private func stopForRestart(_ reason: String) {
        guard restart.decide(reason) else { return }
        logger.critical("\(reason)")
        stop()
        let patience = configuration.gracePeriod + .seconds(15)
        let restart = self.restart
        let logger = self.logger
        DetachedThread.start {
            DetachedThread.sleep(seconds: patience.secondsValue)
            guard !restart.hasEnded else { return }
            logger.critical(
                "the worker could not stop within \(patience.secondsValue) s (its threads are held by abandoned handlers); exiting with status \(WorkerShutdown.restartExitStatus) now")
            exit(WorkerShutdown.restartExitStatus)
        }
    }

    private func runUntilStopped() async throws {
        let refilling = clusterRateLimits.map { limits in Task { await limits.run() } }
        defer { refilling?.cancel() }
        var attempt = 0
        var connectedBefore = false
        let reconnects = Counter(label: TaskMetricNames.reconnects, factory: metricsFactory)
        while await !control.isStopping {
            do {
                let (connection, revokes) = try await connect(attempt: attempt)
                attempt = 0
                if connectedBefore { reconnects.increment() }
                connectedBefore = true
                statusTracker.setConnection(connection)
                defer { statusTracker.setConnection(nil) }
                try await serve(connection, revokes: revokes)
                await connection.close()
            } catch let problem as Topology.Problem {
                // Reconnecting cannot fix a topology that contradicts the broker: say so and stop.
                throw problem
            } catch {
                if await control.isStopping { break }
                attempt += 1
                let pause = ReconnectPolicy(initialDelay: .seconds(1), maxDelay: configuration.maxReconnectDelay)
                    .delay(beforeAttempt: attempt).secondsValue
                logger.error("\(error); reconnecting in \(String(cFormat: "%.1f", pause)) s (attempt \(attempt))")
                try? await control.sleep(seconds: pause)
            }
        }
        // Exec tasks stopped by a warm shutdown get their kill_timeout; a cold one kills them now. Either way their
        // groups' last SIGKILL comes before we exit.
        if await control.isCold { execGroups.killAllNow() }
        await GroupEnding.waitForPendingKills()
        logger.info("worker \(configuration.hostname) stopped")
    }

    /// Starts a warm shutdown: consumers stop taking tasks, running tasks get `gracePeriod` seconds to finish,
    /// then they are interrupted and their messages requeued. `run()` returns when done.
    public func stop() {
        restart.stopping()
        Task { await control.stop() }
    }

    /// Starts a cold shutdown (Celery's second Ctrl-C): consumers stop and running tasks are interrupted at once;
    /// their messages are requeued (never acknowledged), so another worker runs them. `run()` then throws
    /// `WorkerShutdown.cold`. Also ends a warm shutdown that is under way.
    public func shutdownNow() {
        restart.stopping()
        Task { await control.stopNow() }
    }

    /// Connects to the first broker that answers; with several URLs (a cluster's nodes, comma-separated), each
    /// reconnection starts at the next one, so a worker moves off a node that went down.
    private func connect(attempt: Int) async throws -> (Connection, RevokeLogFollower.Reading?) {
        let connection = try await Connection.open(
            anyOf: configuration.broker.connections.map(\.consuming), startingAt: attempt,
            connectionName: "amqp-worker \(configuration.hostname)", logger: logger)
        if let topology = self.configuration.topology {
            try await Topology.declare(topology, on: connection)
        }
        // The queues consumed now: after a reconnect, those `add_consumer` added too, not those it cancelled.
        let shape = slots.shape
        let setup = try await connection.openChannel()
        for queue in shape.queues where !shape.added.contains(queue) {
            // As Celery declares it (durable, no arguments), unless it exists.
            try await Topology.declareQueueIfMissing(queue, on: connection)
            let quorum = configuration.topology?.queue(named: queue)?.kind == .quorum
            try await DeadLetters.declare(for: queue, quorum: quorum, on: setup)
        }
        try await setup.close()
        for queue in shape.queues where shape.added.contains(queue) {
            // A queue add_consumer added: declared again only if it is gone, and a refusal costs only its consumers
            // (they start again with a pause, logging why), never the reconnect.
            do {
                try await prepareAddedQueue(
                    queue, declaration: shape.declarations[queue], on: connection, onlyIfMissing: true)
            } catch let error where !error.isConnectionLoss {
                logger.error("the queue \(queue), added by add_consumer, could not be readied after the reconnect: \(error)")
            }
        }
        do {
            try await DelayedDeliverySetup.prepare(
                queues: shape.queues, configuration: configuration.topology, on: connection, logger: logger)
        } catch let error where !error.isConnectionLoss {
            // As Celery's worker: a delay topology the broker refuses stops delayed tasks, not the worker.
            logger.error(
                "the delay levels or their bindings could not be declared, so delayed tasks (countdown, eta, retries) will not reach \(shape.queues.joined(separator: ", ")) until this is fixed and the worker restarted: \(error)"
            )
        }
        await UnroutableDelayedTasks.resend(to: shape.queues, on: connection, logger: logger)
        // Revokes recorded before this connection (a restart, a worker started later) hold before any task runs.
        var revokes: RevokeLogFollower.Reading?
        if let stream = configuration.revokeLog {
            revokes = try await RevokeLogFollower(stream: stream, instance: instance, state: state, logger: logger)
                .start(on: connection)
        }
        logger.info(
            "worker \(self.configuration.hostname) consuming \(shape.queues.joined(separator: ", ")) with concurrency \(shape.concurrency)\(shape.autoscale.map { " (autoscale \($0.min) to \($0.max))" } ?? ""), prefetch \(self.configuration.prefetch); tasks: \(registry.names.joined(separator: ", "))"
        )
        return (connection, revokes)
    }

    /// Runs the consumers until the connection is lost (throws) or a stop finishes them (returns); `revokes` goes
    /// on following the stream of lasting revokes meanwhile.
    private func serve(_ connection: Connection, revokes: RevokeLogFollower.Reading?) async throws {
        await control.reset()
        let events = try await startEvents(connection)
        let custody = configuration.consumerTimeout.map {
            CustodyKeeper(
                connection: connection,
                queue: CustodyQueue(hostname: configuration.hostname, instance: custodyInstance, consumerTimeout: $0),
                logger: logger)
        }
        // Consumer slots start as the shape says and as remote control or autoscale add them (`ConsumerSlots`).
        let (groupEvents, groupEvent) = AsyncStream.makeStream(of: SlotGroupEvent.self)
        slots.beginConnection { groupEvent.yield(.start($0)) }
        let slots = Task {
            defer { self.slots.endConnection() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                var running = 0
                /// Runs `body` in the group; `groupEvents` hears when it ended or failed.
                func run(_ body: @escaping @Sendable () async throws -> Void) {
                    running += 1
                    group.addTask {
                        do {
                            try await body()
                            groupEvent.yield(.ended)
                        } catch {
                            groupEvent.yield(.failed(error))
                        }
                    }
                }
                if let revokes {
                    // A stop cancels the stream's consumer with the others, which ends the reading.
                    if await control.register(revokes.consumer) {
                        run {
                            await withTaskCancellationHandler { await revokes.task.value } onCancel: { revokes.task.cancel() }
                        }
                    }
                }
                run { try await self.runRemoteControl(connection, events: events) }
                if let events {
                    run { await self.sendHeartbeats(events) }
                }
                run { await self.runAutoscaler(connection) }
                for await event in groupEvents {
                    switch event {
                    case .start(let slot):
                        if await control.isStopping {
                            self.slots.slotEnded(slot)
                            continue
                        }
                        run {
                            defer { self.slots.slotEnded(slot) }
                            try await self.runConsumer(slot: slot, connection: connection, events: events, custody: custody)
                        }
                    case .ended:
                        running -= 1
                        // Collect the child that ended (it returns right after saying so): a task group keeps every
                        // finished child until `next()` takes it, so slots retired and started again and again
                        // (pool_grow/pool_shrink, autoscale) would pile up for as long as the connection lasts.
                        _ = try await group.next()
                    case .failed(let error):
                        // The first consumer to fail (a lost connection) ends the others too, so the worker reconnects.
                        throw error
                    }
                    if running == 0 { break }
                }
                // Cancelled (a cold shutdown, or the end of a warm one's grace): the slots end as they are told.
                try Task.checkCancellation()
            }
        }
        await control.track(slots, gracePeriod: configuration.gracePeriod.secondsValue)
        Task {
            _ = await slots.result
            await control.slotsEnded()
        }
        guard await control.waitForSlots() else {
            // A cold shutdown, and something still runs (a middleware hook that hangs, a handler that ignores
            // cancellation): closing the connection makes the broker requeue every task not yet acknowledged.
            await connection.close()
            return
        }
        try await slots.value
        if let events, eventToggles.workerEvents { await events.workerEvent("worker-offline") }
    }

    /// The event publisher on its own channel, after `worker-online` when events are on; nil when they cannot come
    /// on (no `-E`, and remote control off, so no `enable_events` can arrive).
    private func startEvents(_ connection: Connection) async throws -> EventPublisher? {
        guard configuration.sendEvents || configuration.remoteControl != .off else { return nil }
        let channel = try await connection.openChannel()
        try await EventPublisher.declare(on: channel)
        let events = EventPublisher(
            channel: channel, hostname: configuration.hostname, state: state, toggles: eventToggles)
        if eventToggles.workerEvents {
            await events.workerEvent("worker-online", freq: configuration.eventHeartbeat.secondsValue)
        }
        return events
    }

    /// `worker-heartbeat` every `eventHeartbeat` while worker events are on (they may come on at any time).
    private func sendHeartbeats(_ events: EventPublisher) async {
        while await !control.isStopping, !Task.isCancelled {
            try? await control.sleep(seconds: configuration.eventHeartbeat.secondsValue)
            if await control.isStopping || Task.isCancelled { break }
            guard eventToggles.workerEvents else { continue }
            await events.workerEvent("worker-heartbeat", freq: configuration.eventHeartbeat.secondsValue)
        }
    }

    /// Sizes the consumer slots by backlog while an autoscale range is set (see `Autoscaler`).
    private func runAutoscaler(_ connection: Connection) async {
        let control = self.control
        await Autoscaler(
            slots: slots, connection: connection, interval: configuration.autoscaleInterval,
            keepalive: configuration.autoscaleKeepalive, logger: logger
        ).run(isStopping: { await control.isStopping }, sleep: { try? await control.sleep(seconds: $0) })
    }

    /// Answers remote-control requests; a clash over the node name disables it, never the worker.
    private func runRemoteControl(_ connection: Connection, events: EventPublisher?) async throws {
        try await RemoteControl.serve(worker: self, on: connection, events: events, control: control)
    }

    /// One consumer slot of its queue, for as long as the connection lasts or until it retires (remote control or
    /// autoscale took it away: it ends after its task). When the broker closes the consumer's channel (a message it
    /// refused, a queue on a node that went down) or cancels the consumer (its queue was deleted), the slot comes
    /// back on a new channel after a pause, saying so in the log: a worker never goes on with fewer consumers than
    /// it should have. A lost connection ends it (the worker reconnects).
    private func runConsumer(
        slot consumerSlot: ConsumerSlot, connection: Connection, events: EventPublisher?, custody: CustodyKeeper?
    ) async throws {
        let queue = consumerSlot.queue
        var restarts = 0
        let slot = SlotChannel(connection: connection, prefetch: configuration.prefetch)
        // A cancelled slot (its task group ends: a lost connection, another slot's failure, a cold shutdown) ends
        // too: its pauses return at once when cancelled, so going round again would spin.
        while !consumerSlot.isRetiring, !Task.isCancelled {
            var lost: AMQPError?
            let progress = ConsumerProgress()
            do {
                if try await consume(
                    consumerSlot, channel: slot, events: events, custody: custody, progress: progress)
                {
                    return
                }
            } catch let error as AMQPError
                where connection.isOpen
                    && (error.isChannelLevel || error.kind == .consumerCancelledByServer || error.isChannelLimit)
            {
                // Every channel of the connection in use (more slots than `channel_max`): this slot waits for one,
                // the connection and the other slots go on.
                lost = error
            }
            // The connection closed on purpose (a lost one throws above), a stop began or the slot retired: nothing
            // to restart.
            if !connection.isOpen || consumerSlot.isRetiring || Task.isCancelled { return }
            if await control.isStopping { return }
            // A consumer that served tasks since its last restart starts its pauses anew.
            if progress.processed > 0 { restarts = 0 }
            restarts += 1
            let pause = ReconnectPolicy(initialDelay: .seconds(1), maxDelay: configuration.maxReconnectDelay)
                .delay(beforeAttempt: restarts).secondsValue
            logger.error(
                "the consumer of \(queue) stopped: \(lost.map { "\($0)" } ?? "its channel was closed"); starting it again in \(String(cFormat: "%.1f", pause)) s (restart \(restarts))"
            )
            try? await control.sleep(seconds: pause)
            if consumerSlot.isRetiring || Task.isCancelled { return }
            let queueGone = lost?.kind == .consumerCancelledByServer || lost?.replyCode == .notFound
            if queueGone {
                // Its queue was deleted: declare it again as the configuration says (type, arguments, bindings),
                // or as Celery declares it. A 404 on basic.consume cannot tell a deleted queue from one whose node
                // is down; the declare does (`isNodeDown`), and then the consumer just starts again later.
                do {
                    if let declaration = slots.shape.declarations[queue] {
                        try await declaration.declare(on: connection)
                    } else if let topology = configuration.topology, topology.queue(named: queue) != nil {
                        try await Topology.declare(topology, on: connection)
                    } else {
                        try await Topology.declareQueueIfMissing(queue, on: connection)
                    }
                } catch let error as AMQPError where error.isNodeDown {
                    logger.warning("the queue \(queue) exists but its node is down: \(error)")
                    continue
                }
                let setup = try await connection.openChannel()
                try await DelayedDeliverySetup.bind(queue, configuration: configuration.topology, on: setup)
                try? await setup.close()
            }
        }
    }

    /// Consumes on the slot's channel until the consumer ends; true when it ended because a stop cancelled it or
    /// the slot retired. A consumer cancelled because its task went into custody starts again on the same channel
    /// once the task ended.
    private func consume(
        _ consumerSlot: ConsumerSlot, channel slot: SlotChannel, events: EventPublisher?,
        custody keeper: CustodyKeeper?, progress: ConsumerProgress
    ) async throws -> Bool {
        let queue = consumerSlot.queue
        let channel = try await slot.current()
        let pipeline = TaskPipeline(
            queue: queue, configuration: configuration, registry: registry, state: state,
            middleware: TaskPipeline.middleware(
                state: state, events: events, hostname: configuration.hostname,
                metrics: TaskMetricsMiddleware(knownTasks: Set(registry.names), factory: metricsFactory),
                tracing: tracing, clusterRateLimits: clusterRateLimits, user: middleware),
            outbox: ChannelOutbox(slot: slot, logger: logger), logger: logger)
        var ended: Result<Void, Error> = .success(())
        // The slot counts as consuming `queue` from its first consumer until it stops, through custody pauses.
        var consuming = false
        defer { if consuming { statusTracker.consumerEnded(queue) } }
        while channel.isOpen {
            let consumer = try await channel.consume(queue: queue)
            if !consuming {
                consuming = true
                statusTracker.consumerStarted(queue)
            }
            guard await control.register(consumer) else { return true }
            guard consumerSlot.attach(consumer) else {
                // Retired while its consumer started: it took no task.
                try? await consumer.cancel()
                await control.unregister(consumer)
                await slot.close()
                return true
            }
            let custodyCancel = CustodyCancel(consumer)
            let watch = keeper.map { keeper in
                CustodyWatch(
                    TaskCustody(
                        keeper: keeper,
                        schedule: CustodySchedule(consumerTimeout: configuration.custodyTimeout(for: queue) ?? .zero),
                        queue: queue, stopConsuming: { await custodyCancel.cancel() }, tally: custodyTally,
                        logger: logger),
                    channel: channel)
            }
            watch?.start()
            defer { watch?.stop() }
            let processor = TaskProcessor(
                pipeline: pipeline, attempts: recordAttempts, recordAttempts: configuration.recordAttempts,
                memory: deliveries, custody: watch, logger: logger)
            do {
                for try await delivery in consumer {
                    // Deliveries still buffered when the broker closed the channel were requeued by the close:
                    // running them would run them twice.
                    guard consumer.channelIsOpen else { continue }
                    consumerSlot.setBusy(true)
                    await processor.process(delivery)
                    consumerSlot.setBusy(false)
                    progress.processedOne()
                }
                ended = .success(())
            } catch {
                ended = .failure(error)
            }
            await control.unregister(consumer)
            consumerSlot.detach()
            guard case .success = ended, custodyCancel.happened, !consumerSlot.isRetiring, await !control.isStopping
            else { break }
            logger.info("the consumer of \(queue) takes tasks again: its task in custody ended")
        }
        // A retiring slot's task was recorded and acknowledged above: closing its channel loses nothing.
        await slot.close()
        try ended.get()
        if consumerSlot.isRetiring {
            logger.info("a consumer of \(queue) retired (\(slots.shape.queues.contains(queue) ? "fewer consumers per queue" : "no longer consuming \(queue)"))")
            return true
        }
        return await control.isStopping
    }
}

extension AMQPError {
    /// `channel.open` refused because every channel the connection may have (`channel_max`) is open: the
    /// connection is fine, a channel will be free again once another closes.
    var isChannelLimit: Bool { kind == .invalidArgument && operation == "channel.open" }
}

/// What the task group serving one connection hears: a consumer slot to start, or one of its tasks ended or failed.
private enum SlotGroupEvent: Sendable {
    case start(ConsumerSlot)
    case ended
    case failed(any Error)
}

extension Worker {
    /// Readies a queue `add_consumer` adds, as `connect` readies the configured ones: declared as `declaration`
    /// says, or as the configuration's topology says, or (neither) checked to exist; then its `<queue>.dead` and its
    /// delay bindings. Throws the broker's refusal, or says that the queue does not exist.
    /// `onlyIfMissing` (after a reconnect): a queue that exists is used as it is, not declared again.
    func prepareAddedQueue(
        _ queue: String, declaration: QueueDeclaration?, on connection: Connection, onlyIfMissing: Bool = false
    ) async throws {
        if let declaration, onlyIfMissing {
            let probe = try await connection.openChannel()
            do {
                _ = try await probe.inspectQueue(queue)
                try? await probe.close()
            } catch let error as AMQPError where error.replyCode == .notFound {
                try await declaration.declare(on: connection)
            }
        } else if let declaration {
            try await declaration.declare(on: connection)
        } else if let topology = configuration.topology, topology.queue(named: queue) != nil {
            try await Topology.declare(topology, on: connection)
        } else {
            let probe = try await connection.openChannel()
            do {
                _ = try await probe.inspectQueue(queue)
                try? await probe.close()
            } catch let error as AMQPError where error.replyCode == .notFound {
                throw AddedQueueMissing(queue: queue, broker: error)
            }
        }
        let setup = try await connection.openChannel()
        do {
            let quorum = configuration.topology?.queue(named: queue)?.kind == .quorum
            try await DeadLetters.declare(for: queue, quorum: quorum, on: setup)
        } catch {
            try? await setup.close()
            throw error
        }
        do {
            try await DelayedDeliverySetup.bind(queue, configuration: configuration.topology, on: setup)
        } catch let error where !error.isConnectionLoss {
            logger.error("delayed tasks (countdown, eta, retries) will not reach \(queue): its delay bindings could not be declared: \(error)")
        }
        if setup.isOpen { try? await setup.close() }
    }
}

/// `add_consumer` named a queue that does not exist, without an exchange to declare it with.
struct AddedQueueMissing: Error, CustomStringConvertible {
    let queue: String
    let broker: AMQPError

    var description: String {
        "queue \(queue) does not exist (\(broker.message)): declare it first, or give its exchange (celery control add_consumer \(queue) EXCHANGE [TYPE [ROUTING_KEY]]) for the worker to declare it as Celery does"
    }
}

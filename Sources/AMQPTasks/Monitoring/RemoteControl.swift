import AMQP
import FoundationEssentials
import Glibc
import Logging

/// Answers Celery's remote-control broadcasts (`celery.pidbox`), as Celery workers do, so `celery inspect ping`,
/// `inspect active`, `inspect stats`, `inspect registered`, `control revoke` and `amqp-task inspect` reach Swift
/// workers.
///
/// Requests come on the fanout exchange `celery.pidbox` into the worker's own queue `<hostname>.celery.pidbox`;
/// replies go to the direct exchange `reply.celery.pidbox` (and nowhere else: a request naming another exchange is
/// refused) with the requester's routing key (at most `maxReplyKeyLength` bytes), its `ticket` in the headers and
/// `{"<hostname>": <answer>}` as the body. Requests past their `expires` header, or addressed to other workers
/// (`destination`), get no answer. What is obeyed depends on `RemoteControlAccess`; a refused command is answered
/// `{"error": "…"}`, as Celery answers a command that fails. `enable_events` and `disable_events` switch the worker's
/// events (`EventToggles`) and answer as a Celery 5.7 worker does (`{"ok": "task events enabled"}`, `"task events
/// already enabled"`, `"task events disabled"`, `"task events already disabled"`). `shutdown` (under `full`) starts a
/// warm shutdown, as SIGTERM does, and is not answered, as a Celery 5.7 worker answers none (it raises
/// `WorkerShutdown` in the handler); refused, it is answered with the refusal.
/// `pool_grow`, `pool_shrink`, `autoscale`, `add_consumer` and `cancel_consumer` (under `full`) reshape the worker's
/// consumer slots (`RemoteControl+Pool.swift`, `ConsumerSlots`).
struct RemoteControl: Sendable {
    static let exchange = "celery.pidbox"
    static let replyExchange = "reply.celery.pidbox"
    /// Celery's requesters use a UUID (36 bytes) as the reply routing key.
    static let maxReplyKeyLength = 128
    /// Requests the broker may hand the worker before it acknowledged earlier ones.
    static let prefetch: UInt16 = 10

    let hostname: String
    let state: WorkerState
    let registry: TaskRegistry
    let configuration: WorkerConfiguration
    let access: RemoteControlAccess
    let replies: PidboxReplies
    /// Where events go on this connection; nil when they cannot come on (see `Worker.startEvents`).
    let events: EventPublisher?
    let logger: Logger
    /// Where revokes obeyed from Celery's tools are recorded in `RevokeLog`, so they last.
    let connection: Connection
    /// This worker instance, as it signs what it writes to `RevokeLog`.
    let revokeLogWriter: String
    /// Starts the worker's warm shutdown (`Worker.stop()`), for `shutdown`.
    let stopWorker: @Sendable () -> Void
    /// The worker's queues and consumer slots, for the pool, autoscale and consumer commands.
    let slots: ConsumerSlots
    /// Declares a queue `add_consumer` adds (or checks it exists), with its dead-letter queue and delay bindings.
    let prepareQueue: @Sendable (String, QueueDeclaration?) async throws -> Void
    /// How many `enable_events` this worker refused: Flower sends one every 5 s, so only the first is a notice.
    let refusedEnableEvents = ManagedCounter()

    /// Declares the exchanges as Celery does (durable false, auto-delete false) and the worker's queue.
    static func declare(on channel: Channel, hostname: String) async throws -> String {
        try await channel.declareExchange(exchange, type: .fanout, durable: false)
        try await channel.declareExchange(replyExchange, type: .direct, durable: false)
        let queue = "\(hostname).celery.pidbox"
        try await channel.declareQueue(
            queue, durable: false, exclusive: true, autoDelete: true,
            arguments: ["x-expires": .int32(10000), "x-message-ttl": .int32(300_000)])
        try await channel.bindQueue(queue, to: exchange)
        return queue
    }

    /// Runs remote control on `connection` for `worker` until the worker stops (returns) or the connection is lost
    /// (throws, and the worker reconnects). If the broker closes the pidbox channel while the connection stays up,
    /// remote control starts again on a new channel after a pause that doubles up to 30 s, with an error logged
    /// each time: it never silently goes away.
    static func serve(
        worker: Worker, on connection: Connection, events: EventPublisher?, control: WorkerControl
    ) async throws {
        let configuration = worker.configuration
        guard configuration.remoteControl != .off else {
            worker.logger.info("remote control is off: celery inspect and celery control do not reach \(configuration.hostname)")
            return
        }
        let replies = PidboxReplies(connection: connection, logger: worker.logger)
        let remote = RemoteControl(
            hostname: configuration.hostname, state: worker.state, registry: worker.registry,
            configuration: configuration, access: configuration.remoteControl, replies: replies, events: events,
            logger: worker.logger, connection: connection, revokeLogWriter: worker.instance,
            stopWorker: { [weak worker] in worker?.stop() }, slots: worker.slots,
            prepareQueue: { [weak worker] queue, declaration in
                guard let worker else { return }
                try await worker.prepareAddedQueue(queue, declaration: declaration, on: connection)
            })
        let handled = ManagedCounter()
        var restarts = 0
        defer { Task { await replies.close() } }
        while await !control.isStopping {
            let handledBefore = handled.value
            do {
                try await remote.consume(on: connection, control: control, handled: handled)
                return
            } catch where connection.isOpen && !Task.isCancelled {
                // A restart that served requests was not a tight failure: start the backoff over.
                restarts = handled.value > handledBefore ? 1 : restarts + 1
                let pause = min(30, pow(2, Double(min(restarts, 6) - 1)))
                worker.logger.error(
                    "remote control stopped: \(error); starting it again in \(Int(pause)) s (restart \(restarts))")
                try? await control.sleep(seconds: pause)
            }
        }
    }

    /// Consumes the pidbox queue on a channel of its own until the consumer ends.
    private func consume(on connection: Connection, control: WorkerControl, handled: ManagedCounter) async throws {
        let channel = try await connection.openChannel()
        let queue: String
        do {
            queue = try await Self.declare(on: channel, hostname: hostname)
        } catch let error as AMQPError where error.replyCode == .resourceLocked {
            logger.warning(
                "remote control is off: another worker named \(hostname) is connected; give each worker its own --hostname"
            )
            return
        }
        try await channel.setPrefetch(Self.prefetch)
        let consumer = try await channel.consume(queue: queue, exclusive: true)
        guard await control.register(consumer) else { return }
        for try await delivery in consumer {
            await handle(delivery)
            handled.add(1)
        }
    }

    func handle(_ delivery: Delivery) async {
        try? await delivery.ack()
        guard let request = try? JSONValue.parse(delivery.body), let method = request["method"]?.stringValue else {
            logger.warning("ignored a remote-control message that is not a Celery pidbox request")
            return
        }
        let headers = delivery.properties.headers ?? [:]
        if let clock = headers["clock"]?.intValue { state.observe(clock: clock) }
        if let expires = headers["expires"]?.doubleValue, expires < Date().timeIntervalSince1970 { return }
        if let destination = request["destination"]?.arrayValue,
            !destination.contains(.string(hostname))
        {
            return
        }
        let arguments = request["arguments"]?.objectValue ?? [:]
        let replyTo = request["reply_to"]?.objectValue
        let replyKey = replyTo?["routing_key"]?.stringValue
        if replyTo != nil, replyKey.map({ $0.isEmpty || $0.utf8.count > Self.maxReplyKeyLength }) ?? true {
            logger.warning(
                "ignored remote-control \(Self.clip(method)): its reply_to routing key is missing or longer than \(Self.maxReplyKeyLength) bytes"
            )
            return
        }
        let answer: JSONValue?
        if let exchange = replyTo?["exchange"]?.stringValue, exchange != Self.replyExchange {
            logger.warning("refused remote-control \(Self.clip(method)): it asks for its reply on exchange \(Self.clip(exchange))")
            answer = Self.refusal("replies go only to the exchange \(Self.replyExchange), not \(Self.clip(exchange))")
        } else if !access.allows(method) {
            let flowerAsksAgain = method == "enable_events"
            let repeated = flowerAsksAgain && refusedEnableEvents.value > 0
            if flowerAsksAgain { refusedEnableEvents.add(1) }
            logger.log(
                level: repeated ? .debug : .notice,
                "refused remote-control \(Self.clip(method)): remote_control is \(access.rawValue)\(flowerAsksAgain ? " (Flower sends it every 5 s: later refusals are logged at debug level)" : "")")
            let needed = RemoteControlAccess.needed(for: method).rawValue
            answer = Self.refusal(
                "\(Self.clip(method)) refused: remote control of \(hostname) is \(access.rawValue); set [worker] remote_control = \"\(needed)\" or amqp-worker --remote-control \(needed) to allow it"
            )
        } else {
            // Flower sends enable_events to every worker every 5 s: only a change is worth an info line.
            logger.log(
                level: method == "enable_events" ? .debug : .info,
                "remote control: \(Self.clip(method)) \(Self.clip(JSONValue.object(arguments).jsonString))")
            answer = await self.answer(method, arguments)
        }
        guard let replyKey, let answer else { return }
        await replies.send(
            OutgoingMessage(
                body: JSONValue.object([hostname: answer]).jsonData(), exchange: Self.replyExchange,
                routingKey: replyKey,
                properties: BasicProperties(
                    contentType: "application/json", contentEncoding: "utf-8",
                    headers: [
                        "ticket": request["ticket"].flatMap(\.stringValue).map(FieldValue.string) ?? .void,
                        "clock": .int32(Int32(clamping: state.tick())),
                    ],
                    deliveryMode: BasicProperties.DeliveryMode.transient, priority: 0)))
    }

    /// A refusal, as Celery answers a command that failed.
    static func refusal(_ why: String) -> JSONValue { ["error": .string(why)] }

    /// Text from a request, shortened for logs and replies.
    static func clip(_ text: String) -> String {
        text.count <= 200 ? text : text.prefix(200) + "…"
    }

    /// The answer to one method, or nil for methods this worker does not know (Celery logs and ignores them) and
    /// for `shutdown` (Celery's worker does not answer it).
    private func answer(_ method: String, _ arguments: [String: JSONValue]) async -> JSONValue? {
        switch method {
        case "ping":
            return ["ok": "pong"]
        case "registered":
            return registered(arguments["taskinfoitems"])
        case "active":
            // Task arguments may be secrets; without remote_control = "full" they are hidden.
            return .array(state.active.values.sorted { $0.started < $1.started }.map {
                activeEntry($0, showArguments: access.showsArguments)
            })
        case "stats":
            return await stats()
        case "active_queues":
            return activeQueues()
        case "scheduled", "reserved":
            // Tasks with an ETA wait in the broker's delay queues, never in worker memory; prefetch 1 reserves none.
            return .array([])
        case "revoked":
            return .array(state.revokedIDs.map(JSONValue.string))
        case "conf":
            return [
                "worker_prefetch_multiplier": .int(Int(configuration.prefetch)), "task_acks_late": true,
                "worker_concurrency": .int(slots.shape.concurrency), "task_serializer": "json",
                "result_backend": "rpc://",
            ]
        case "revoke", "terminate":
            let ids: [String]
            switch arguments["task_id"] {
            case .string(let id)?: ids = [id]
            case .array(let list)?: ids = list.compactMap(\.stringValue)
            default: ids = []
            }
            // Flower sends `terminate` as 1 (Python's strtobool), Celery's CLI as true.
            // Celery's `terminate` command is `revoke` with `terminate`.
            let terminate = method == "terminate"
                || arguments["terminate"].map { $0.boolValue ?? (($0.intValue ?? 0) != 0) } ?? false
            let running = state.revoke(ids, terminate: terminate)
            logger.notice("revoked \(Self.clip(ids.joined(separator: ", ")))\(terminate ? "; terminated \(running.count) running" : "")")
            // `amqp-task revoke` recorded it already; from Celery's tools, one of the workers that receive it
            // records it so it lasts (`RevokeLog.recordOnce`), waiting at most `RevokeLog.recordLimit`.
            if arguments[RevokeLog.recordedArgument]?.boolValue != true, let stream = configuration.revokeLog {
                let (connection, writer) = (self.connection, revokeLogWriter)
                do {
                    _ = try await BoundedWait.run(within: RevokeLog.recordLimit) {
                        try await RevokeLog.recordOnce(ids, in: stream, writer: writer, on: connection)
                    }
                } catch {
                    let why = "tasks \(Self.clip(ids.joined(separator: ", "))) flagged as revoked in this worker until it stops, but the revoke could not be recorded in \(stream) to last (\(error)); send it again, or with amqp-task revoke"
                    logger.error("\(why)")
                    return Self.refusal(why)
                }
            }
            return ["ok": .string("tasks \(Self.clip(ids.joined(separator: ", "))) flagged as revoked")]
        case "rate_limit":
            return setRateLimit(arguments)
        case "time_limit":
            return setTimeLimit(arguments)
        case "shutdown":
            // Celery logs the request's `msg` at warning level and raises WorkerShutdown: no reply is sent.
            let message = arguments["msg"]?.stringValue.map(Self.clip) ?? "Got shutdown from remote"
            logger.warning("\(message): warm shutdown by remote control (grace \(configuration.gracePeriod))")
            stopWorker()
            return nil
        case "enable_events":
            return await enableEvents()
        case "disable_events":
            return disableEvents()
        case "pool_grow":
            return await poolGrow(arguments)
        case "pool_shrink":
            return await poolShrink(arguments)
        case "autoscale":
            return await autoscale(arguments)
        case "add_consumer":
            return await addConsumer(arguments)
        case "cancel_consumer":
            return await cancelConsumer(arguments)
        case "pool_restart":
            return Self.refusal(
                "pool_restart is not supported by amqp-tasks workers: they run tasks in their own process, with no pool processes to restart; restart the worker to load new code")
        case let other where RemoteControlAccess.controlMethods.contains(other):
            return Self.refusal("\(other) is not supported by amqp-tasks workers")
        default:
            return nil
        }
    }

    /// `celery control rate_limit NAME RATE`, answered with Celery's words.
    private func setRateLimit(_ arguments: [String: JSONValue]) -> JSONValue {
        guard let name = arguments["task_name"]?.stringValue, registry.names.contains(name) else {
            return Self.refusal("unknown task")
        }
        if configuration.tasks[name]?.rateLimitScope == .cluster {
            // Kept by all workers together: one worker's word cannot change it (workers started later, or that
            // missed this broadcast, would issue tokens at the old rate).
            return Self.refusal(
                "the rate limit of \(name) is cluster-wide (rate_limit_scope = \"cluster\"): change rate_limit in [tasks.\"\(name)\"] of the workers' configuration and restart them")
        }
        let text: String
        switch arguments["rate_limit"] {
        case .string(let value)?: text = value
        case .int(let value)?: text = String(value)
        case .double(let value)?: text = String(value)
        case .null?, nil: text = ""
        default: return Self.refusal("Invalid rate limit string: \(arguments["rate_limit"]!.jsonString)")
        }
        let limit: RateLimit?
        do {
            limit = try RateLimit.parse(text)
        } catch {
            return Self.refusal("Invalid rate limit string: \(error)")
        }
        state.rateLimits.set(limit, for: name)
        guard let limit else {
            logger.notice("rate limit of \(name) disabled by remote control")
            return ["ok": "rate limit disabled successfully"]
        }
        logger.notice("rate limit of \(name) set to \(limit) by remote control")
        return ["ok": "new rate limit set successfully"]
    }

    /// `celery control time_limit NAME SOFT [HARD]`, answered with Celery's words: the limits of tasks of `NAME`
    /// admitted from now on (tasks running keep theirs). As in Celery, a limit left out is none, and a task whose
    /// message carries its own `timelimit` keeps it. Any handler can get a hard limit this way: a handler with a
    /// hard limit runs on its consumer's handler thread (`HandlerThread`), taken when needed.
    private func setTimeLimit(_ arguments: [String: JSONValue]) -> JSONValue {
        guard let name = arguments["task_name"]?.stringValue, registry.names.contains(name) else {
            logger.error("Change time limit attempt for unknown task \(Self.clip(arguments["task_name"]?.stringValue ?? "(none)"))")
            return Self.refusal("unknown task")
        }
        let soft: Duration?
        let hard: Duration?
        do {
            soft = try Self.seconds(arguments["soft"], "soft")
            hard = try Self.seconds(arguments["hard"], "hard")
        } catch {
            return Self.refusal("\(error)")
        }
        state.timeLimits.set(TaskTimeLimits.Limits(soft: soft, hard: hard), for: name)
        logger.notice(
            "New time limits for tasks of type \(name): soft=\(soft.map { "\($0.secondsValue) s" } ?? "none") hard=\(hard.map { "\($0.secondsValue) s" } ?? "none") (by remote control; for tasks started from now on)")
        return ["ok": "time limits set successfully"]
    }

    /// A limit in seconds from a request (a number, or a number as text); nil, zero or absent is none, as in Celery.
    private static func seconds(_ value: JSONValue?, _ which: String) throws -> Duration? {
        let seconds: Double?
        switch value {
        case nil, .null?: return nil
        case .int(let n)?: seconds = Double(n)
        case .double(let d)?: seconds = d
        case .string(let text)?: seconds = Double(text.trimmingWhitespace())
        default: seconds = nil
        }
        guard let seconds, seconds.isFinite, seconds >= 0, seconds <= 366 * 24 * 3600 else {
            throw RemoteControlArgumentError(
                "Invalid \(which) time limit \(clip(value?.jsonString ?? "")): expected seconds, a number from 0 (none) to a year")
        }
        return seconds == 0 ? nil : .clampedSeconds(seconds)
    }

    /// Celery's `enable_events`: task events on, and worker events too (with a `worker-online` first, so Flower
    /// lists the worker) if they were off.
    private func enableEvents() async -> JSONValue {
        guard let events else { return Self.refusal("event dispatcher unavailable") }
        let enabled = events.toggles.enable(revealingData: access.showsArguments)
        if enabled.workerEvents {
            await events.workerEvent("worker-online", freq: configuration.eventHeartbeat.secondsValue)
        }
        guard enabled.taskEvents else { return ["ok": "task events already enabled"] }
        logger.info("task events enabled by remote control")
        return ["ok": "task events enabled"]
    }

    /// Celery's `disable_events`: task events off; worker heartbeats go on, as a Celery worker's do.
    private func disableEvents() -> JSONValue {
        guard let events else { return Self.refusal("event dispatcher unavailable") }
        guard events.toggles.disableTaskEvents() else { return ["ok": "task events already disabled"] }
        logger.info("task events disabled by remote control")
        return ["ok": "task events disabled"]
    }

    private func activeEntry(_ task: WorkerState.ActiveTask, showArguments: Bool) -> JSONValue {
        let m = task.message
        return [
            "id": .string(m.id), "name": .string(m.name),
            "args": showArguments ? .array(m.args) : "<hidden>", "kwargs": showArguments ? .object(m.kwargs) : "<hidden>",
            "type": .string(m.name), "hostname": .string(hostname),
            "time_start": .double(task.started.timeIntervalSince1970), "acknowledged": false,
            "delivery_info": [
                "exchange": "", "routing_key": .string(task.queue), "priority": .int(Int(m.priority ?? 0)),
                "redelivered": .bool(task.redelivered),
            ],
            "worker_pid": .int(Int(getpid())),
        ]
    }

    private func stats() async -> JSONValue {
        let processed = state.processed
        let shape = slots.shape
        let consumers = slots.runningCounts
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        var answer: [String: JSONValue] = [
            "total": .object(processed.mapValues(JSONValue.int)),
            "pid": .int(Int(getpid())),
            "clock": .string(String(state.tick())),
            "pool": [
                "implementation": "amqp-tasks consumers",
                "max-concurrency": .int(shape.concurrency * shape.queues.count),
                "processes": .array([.int(Int(getpid()))]),
            ],
            "prefetch_count": .int(Int(configuration.prefetch) * shape.concurrency * shape.queues.count),
            // amqp-tasks' own: consumer slots per queue now, and the slots running for each queue (a retiring one
            // counts until its task ended).
            "concurrency": .int(shape.concurrency),
            "consumers": .object(consumers.mapValues(JSONValue.int)),
            "broker": ["transport": "amqp", "heartbeat": .int(Int((configuration.broker.connections.first?.heartbeat ?? .seconds(60)).secondsValue.rounded()))],
            "rusage": [
                "maxrss": .int(Int(usage.ru_maxrss)),
                "utime": .double(Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6),
                "stime": .double(Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6),
            ],
            "sw_ident": "amqp-tasks", "sw_ver": .string(amqpTasksVersion),
        ]
        if let range = shape.autoscale {
            // As Celery's Autoscaler.info(), per queue: the range and the consumers per queue now.
            answer["autoscaler"] = ["max": .int(range.max), "min": .int(range.min), "current": .int(shape.concurrency)]
        }
        return .object(answer)
    }

    /// `inspect registered`: the task names; with Celery's `taskinfoitems` (`celery inspect registered rate_limit
    /// time_limit soft_time_limit`), each name followed by the limits in force now, as a Celery worker lists them
    /// (`"demo.add [rate_limit=10/s time_limit=5.0]"`). Without them, the names alone: these workers have no
    /// per-task exchange or routing key, Celery's default items.
    private func registered(_ items: JSONValue?) -> JSONValue {
        let wanted = (items?.arrayValue ?? []).compactMap(\.stringValue)
        return .array(registry.names.map { name in
            let timeLimits = state.timeLimits.limits(for: name)
            let settings = configuration.tasks[name]
            let fields: [String] = wanted.compactMap { item in
                switch item {
                case "rate_limit": return state.rateLimits.limit(for: name).map { "rate_limit=\($0)" }
                case "time_limit":
                    return (timeLimits.map { $0.hard } ?? settings?.timeLimit).map { "time_limit=\($0.secondsValue)" }
                case "soft_time_limit":
                    return (timeLimits.map { $0.soft } ?? settings?.softTimeLimit).map { "soft_time_limit=\($0.secondsValue)" }
                default: return nil
                }
            }
            return .string(fields.isEmpty ? name : "\(name) [\(fields.joined(separator: " "))]")
        })
    }
}

/// A remote-control request's argument that cannot be used; its text is the `{"error": …}` reply.
struct RemoteControlArgumentError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

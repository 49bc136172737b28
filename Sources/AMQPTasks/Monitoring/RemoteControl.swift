import AMQP
import Foundation
import Logging

/// Answers Celery's remote-control broadcasts (`celery.pidbox`), as Celery workers do, so `celery inspect ping`,
/// `inspect active`, `inspect stats`, `inspect registered`, `control revoke` and `amqp-task inspect` reach Swift
/// workers.
///
/// Requests come on the fanout exchange `celery.pidbox` into the worker's own queue `<hostname>.celery.pidbox`;
/// replies go to the direct exchange `reply.celery.pidbox` with the requester's routing key, its `ticket` in the
/// headers and `{"<hostname>": <answer>}` as the body. Requests past their `expires` header, or addressed to other
/// workers (`destination`), get no answer.
struct RemoteControl: Sendable {
    static let exchange = "celery.pidbox"
    static let replyExchange = "reply.celery.pidbox"

    let channel: Channel
    let hostname: String
    let state: WorkerState
    let registry: TaskRegistry
    let configuration: WorkerConfiguration
    let logger: Logger

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
        let answer = await answer(method, arguments)
        logger.info("remote control: \(method) \(JSONValue.object(arguments).jsonString)")
        guard let replyTo = request["reply_to"]?.objectValue, let key = replyTo["routing_key"]?.stringValue,
            let answer
        else { return }
        let message = OutgoingMessage(
            body: JSONValue.object([hostname: answer]).jsonData(),
            exchange: replyTo["exchange"]?.stringValue ?? Self.replyExchange, routingKey: key,
            properties: BasicProperties(
                contentType: "application/json", contentEncoding: "utf-8",
                headers: [
                    "ticket": request["ticket"].flatMap(\.stringValue).map(FieldValue.string) ?? .void,
                    "clock": .int32(Int32(clamping: state.tick())),
                ],
                deliveryMode: BasicProperties.DeliveryMode.transient, priority: 0))
        try? await channel.publish(message)
    }

    /// The answer to one method, or nil for methods this worker does not know (Celery logs and ignores them).
    private func answer(_ method: String, _ arguments: [String: JSONValue]) async -> JSONValue? {
        switch method {
        case "ping":
            return ["ok": "pong"]
        case "registered":
            return .array(registry.names.map(JSONValue.string))
        case "active":
            return .array(state.active.values.sorted { $0.started < $1.started }.map(activeEntry))
        case "stats":
            return await stats()
        case "active_queues":
            return .array(configuration.queues.map { queue in
                [
                    "name": .string(queue), "exchange": ["name": "", "type": "direct"], "routing_key": .string(queue),
                    "durable": true, "exclusive": false, "auto_delete": false, "no_ack": false,
                ]
            })
        case "scheduled", "reserved":
            // Tasks with an ETA wait in the broker's delay queues, never in worker memory; prefetch 1 reserves none.
            return .array([])
        case "revoked":
            return .array(state.revokedIDs.map(JSONValue.string))
        case "conf":
            return [
                "worker_prefetch_multiplier": .int(Int(configuration.prefetch)), "task_acks_late": true,
                "worker_concurrency": .int(configuration.concurrency), "task_serializer": "json",
                "result_backend": "rpc://",
            ]
        case "revoke":
            let ids: [String]
            switch arguments["task_id"] {
            case .string(let id)?: ids = [id]
            case .array(let list)?: ids = list.compactMap(\.stringValue)
            default: ids = []
            }
            // Flower sends `terminate` as 1 (Python's strtobool), Celery's CLI as true.
            let terminate = arguments["terminate"].map { $0.boolValue ?? (($0.intValue ?? 0) != 0) } ?? false
            let running = state.revoke(ids, terminate: terminate)
            logger.notice("revoked \(ids.joined(separator: ", "))\(terminate ? "; terminated \(running.count) running" : "")")
            return ["ok": .string("tasks \(ids.joined(separator: ", ")) flagged as revoked")]
        default:
            return nil
        }
    }

    private func activeEntry(_ task: WorkerState.ActiveTask) -> JSONValue {
        let m = task.message
        return [
            "id": .string(m.id), "name": .string(m.name), "args": .array(m.args), "kwargs": .object(m.kwargs),
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
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return [
            "total": .object(processed.mapValues(JSONValue.int)),
            "pid": .int(Int(getpid())),
            "clock": .string(String(state.tick())),
            "pool": [
                "implementation": "amqp-tasks consumers",
                "max-concurrency": .int(configuration.concurrency * configuration.queues.count),
                "processes": .array([.int(Int(getpid()))]),
            ],
            "prefetch_count": .int(Int(configuration.prefetch) * configuration.concurrency * configuration.queues.count),
            "broker": ["transport": "amqp", "heartbeat": .int((try? ConnectionConfiguration(url: configuration.url).heartbeat) ?? 60)],
            "rusage": [
                "maxrss": .int(Int(usage.ru_maxrss)),
                "utime": .double(Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6),
                "stime": .double(Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6),
            ],
            "sw_ident": "amqp-tasks", "sw_ver": .string(amqpTasksVersion),
        ]
    }
}

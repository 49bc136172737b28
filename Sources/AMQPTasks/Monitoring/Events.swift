import AMQP
import FoundationEssentials
import Glibc

/// Publishes Celery-compatible events to the `celeryev` topic exchange, so Flower, `celery events` and
/// `amqp-task events` see Swift workers and their tasks.
///
/// Routing keys are the event type with `-` as `.` (`task.succeeded`); every event carries `hostname`, `utcoffset`,
/// `pid`, `clock`, `timestamp` and `type`. Events are transient and unconfirmed, as Celery's are: they report,
/// they never decide the fate of a task. Which events go out is up to `toggles` (`-E`, `enable_events`).
struct EventPublisher: Sendable {
    static let exchange = "celeryev"
    let channel: Channel
    let hostname: String
    let state: WorkerState
    let toggles: EventToggles

    static func declare(on channel: Channel) async throws {
        try await channel.declareExchange(exchange, type: .topic, durable: true)
    }

    /// Publishes one event; failures are logged by the caller's channel and otherwise ignored.
    func send(_ type: String, _ fields: [String: JSONValue]) async {
        var body = fields
        body["hostname"] = .string(hostname)
        body["utcoffset"] = .int(-TimeZones.localSecondsFromGMT() / 3600)
        body["pid"] = .int(Int(getpid()))
        body["clock"] = .int(state.tick())
        body["timestamp"] = .double(Date().timeIntervalSince1970)
        body["type"] = .string(type)
        let message = OutgoingMessage(
            body: JSONValue.object(body).jsonData(), exchange: Self.exchange,
            routingKey: type.replacing("-", with: "."),
            properties: BasicProperties(
                contentType: "application/json", contentEncoding: "utf-8", headers: ["hostname": .string(hostname)],
                deliveryMode: BasicProperties.DeliveryMode.transient, priority: 0))
        try? await channel.publish(message)
    }

    /// `worker-online`, `worker-heartbeat` and `worker-offline` fields.
    func workerEvent(_ type: String, freq: Double = 2) async {
        let active = state.active.count
        let processed = state.totalProcessed
        await send(type, [
            "freq": .double(freq), "active": .int(active), "processed": .int(processed),
            "loadavg": .array(Self.loadAverage().map(JSONValue.double)), "sw_ident": "amqp-tasks",
            "sw_ver": .string(amqpTasksVersion), "sw_sys": "Linux",
        ])
    }

    func taskReceived(_ message: TaskMessage) async {
        await send("task-received", [
            "uuid": .string(message.id), "name": .string(message.name),
            "args": .string(toggles.hidesTaskData ? Self.hidden : message.argsRepr ?? PythonRepr.tuple(message.args)),
            "kwargs": .string(
                toggles.hidesTaskData ? Self.hidden : message.kwargsRepr ?? PythonRepr.repr(.object(message.kwargs))),
            "root_id": message.rootId.map(JSONValue.string) ?? .null,
            "parent_id": message.parentId.map(JSONValue.string) ?? .null, "retries": .int(message.retries),
            "eta": message.eta.map(JSONValue.string) ?? .null, "expires": message.expires.map(JSONValue.string) ?? .null,
        ])
    }

    /// What task events say instead of task data when `toggles.hidesTaskData`.
    static let hidden = "<hidden>"

    static func loadAverage() -> [Double] {
        var values = [Double](repeating: 0, count: 3)
        _ = getloadavg(&values, 3)
        return values.map { ($0 * 100).rounded() / 100 }
    }
}

/// The version workers report in events and `inspect stats`: `AMQPTasksVersion.current`.
public let amqpTasksVersion = AMQPTasksVersion.current

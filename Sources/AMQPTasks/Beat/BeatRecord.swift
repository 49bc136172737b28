import AMQP
import FoundationEssentials

/// What the scheduler keeps in the broker, as JSON an operator can read in the management UI: a tick sent
/// (`state.<schedule>`: `schedule`, `tick`, `task_id`), or the leader's note (`leader-info`: `since` and the last
/// tick sent of each schedule).
public struct BeatRecord: Sendable, Hashable {
    public var schedule: String?
    /// The tick (its scheduled time, not the time it was sent).
    public var tick: Date?
    public var taskId: String?
    /// The instance that wrote this record.
    public var writer: String
    /// When it was written.
    public var written: Date
    /// `leader-info`: when the writer took over.
    public var since: Date?
    /// `leader-info`: the last tick the writer knows was sent, by schedule.
    public var lastTicks: [String: Date]

    public init(
        schedule: String? = nil, tick: Date? = nil, taskId: String? = nil, writer: String, written: Date = Date(),
        since: Date? = nil, lastTicks: [String: Date] = [:]
    ) {
        self.schedule = schedule
        self.tick = tick
        self.taskId = taskId
        self.writer = writer
        self.written = written
        self.since = since
        self.lastTicks = lastTicks
    }

    /// The message to publish into `queue`: persistent JSON.
    public func outgoing(to queue: String) -> OutgoingMessage {
        var object: [String: JSONValue] = ["writer": .string(writer), "written": .string(TickID.timestamp(written))]
        if let schedule { object["schedule"] = .string(schedule) }
        if let tick { object["tick"] = .string(TickID.timestamp(tick)) }
        if let taskId { object["task_id"] = .string(taskId) }
        if let since { object["since"] = .string(TickID.timestamp(since)) }
        if !lastTicks.isEmpty { object["last_ticks"] = .object(lastTicks.mapValues { .string(TickID.timestamp($0)) }) }
        return OutgoingMessage(
            body: JSONValue.object(object).jsonData(), routingKey: queue,
            properties: BasicProperties(
                contentType: "application/json", deliveryMode: BasicProperties.DeliveryMode.persistent))
    }

    /// Reads a record; nil for a body that is not one.
    public init?(body: Data) {
        guard case .object(let object)? = try? JSONValue.parse(body), let writer = object["writer"]?.stringValue,
            let written = object["written"]?.stringValue.flatMap(CeleryTime.parse)
        else { return nil }
        self.writer = writer
        self.written = written
        schedule = object["schedule"]?.stringValue
        tick = object["tick"]?.stringValue.flatMap(CeleryTime.parse)
        taskId = object["task_id"]?.stringValue
        since = object["since"]?.stringValue.flatMap(CeleryTime.parse)
        lastTicks = [:]
        if case .object(let ticks)? = object["last_ticks"] {
            for (name, value) in ticks { if let date = value.stringValue.flatMap(CeleryTime.parse) { lastTicks[name] = date } }
        }
        if object["tick"] != nil, tick == nil { return nil }
    }
}

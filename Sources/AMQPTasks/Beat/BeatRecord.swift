import AMQP
import Foundation

/// What the scheduler keeps in the broker: the last tick sent of a schedule (`state.<schedule>`), or who leads
/// (`leader-info`). JSON bodies, so an operator can read them in the management UI.
public struct BeatRecord: Sendable, Hashable {
    public var schedule: String?
    /// The tick (its scheduled time, not the time it was sent).
    public var tick: Date?
    public var taskId: String?
    /// The instance that wrote this record.
    public var writer: String
    /// When it was written.
    public var written: Date

    public init(schedule: String? = nil, tick: Date? = nil, taskId: String? = nil, writer: String, written: Date = Date()) {
        self.schedule = schedule
        self.tick = tick
        self.taskId = taskId
        self.writer = writer
        self.written = written
    }

    /// The message to publish into `queue`: persistent JSON.
    public func outgoing(to queue: String) -> OutgoingMessage {
        var object: [String: JSONValue] = ["writer": .string(writer), "written": .string(TickID.timestamp(written))]
        if let schedule { object["schedule"] = .string(schedule) }
        if let tick { object["tick"] = .string(TickID.timestamp(tick)) }
        if let taskId { object["task_id"] = .string(taskId) }
        return OutgoingMessage(
            body: JSONValue.object(object).jsonData(), routingKey: queue,
            properties: BasicProperties(
                contentType: "application/json", deliveryMode: BasicProperties.DeliveryMode.persistent))
    }

    /// Reads a record; nil for a body that is not one (it is then ignored: a newer record replaces it).
    public init?(body: Data) {
        guard case .object(let object)? = try? JSONValue.parse(body), let writer = object["writer"]?.stringValue,
            let written = object["written"]?.stringValue.flatMap(CeleryTime.parse)
        else { return nil }
        self.writer = writer
        self.written = written
        schedule = object["schedule"]?.stringValue
        tick = object["tick"]?.stringValue.flatMap(CeleryTime.parse)
        taskId = object["task_id"]?.stringValue
        if object["tick"] != nil, tick == nil { return nil }
    }
}

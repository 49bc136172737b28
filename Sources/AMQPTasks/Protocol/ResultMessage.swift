import AMQP
import FoundationEssentials

/// A state change or result of a task, in the format of Celery's rpc:// result backend.
///
/// Published to the default exchange with the caller's `reply_to` as routing key and the task id as
/// `correlation_id`; the body is `{"task_id", "status", "result", "traceback", "children", "date_done"}` (and
/// `parent_id` when the task has one, `group_id` when it is a member of a group or chord). FAILURE and RETRY carry an exception as
/// `{"exc_type", "exc_message": [...], "exc_module"}` in `result`.
public struct ResultMessage: Sendable, Hashable {
    public var taskId: String
    public var status: TaskState
    public var result: JSONValue
    public var traceback: String?
    public var children: [JSONValue]
    /// ISO 8601 time the task finished; nil for non-final states.
    public var dateDone: String?
    public var parentId: String?
    /// The group the task belongs to (`group_id`, as Celery's backends write it for group and chord members).
    public var groupId: String?

    public init(
        taskId: String, status: TaskState, result: JSONValue = .null, traceback: String? = nil,
        children: [JSONValue] = [], dateDone: String? = nil, parentId: String? = nil
    ) {
        self.taskId = taskId
        self.status = status
        self.result = result
        self.traceback = traceback
        self.children = children
        self.dateDone = dateDone
        self.parentId = parentId
    }

    /// A final SUCCESS with `value`.
    public static func success(_ taskId: String, _ value: JSONValue, parentId: String? = nil) -> ResultMessage {
        ResultMessage(
            taskId: taskId, status: .success, result: value, dateDone: CeleryTime.format(Date()), parentId: parentId)
    }

    /// A final FAILURE with `error`.
    public static func failure(
        _ taskId: String, _ error: TaskFailure, traceback: String? = nil, parentId: String? = nil
    ) -> ResultMessage {
        ResultMessage(
            taskId: taskId, status: .failure, result: error.json, traceback: traceback,
            dateDone: CeleryTime.format(Date()), parentId: parentId)
    }

    /// The exception of a FAILURE or RETRY result, if `result` holds one.
    public var failure: TaskFailure? { TaskFailure(json: result) }

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "task_id": .string(taskId),
            "status": .string(status.rawValue),
            "result": result,
            "traceback": traceback.map(JSONValue.string) ?? .null,
            "children": .array(children),
            "date_done": dateDone.map(JSONValue.string) ?? .null,
        ]
        if let parentId { object["parent_id"] = .string(parentId) }
        if let groupId { object["group_id"] = .string(groupId) }
        return .object(object)
    }

    /// The message to publish: JSON body, `correlation_id` = task id, empty headers as Celery sends.
    public func outgoing(replyTo: String, persistent: Bool) -> OutgoingMessage {
        OutgoingMessage(
            body: json.jsonData(), exchange: "", routingKey: replyTo,
            properties: BasicProperties(
                contentType: "application/json", contentEncoding: "utf-8", headers: [:],
                deliveryMode: persistent ? BasicProperties.DeliveryMode.persistent : BasicProperties.DeliveryMode.transient,
                priority: 0, correlationId: taskId))
    }

    /// Reads a result message body; throws `TaskMessageError` when it is not one. Any status is read, custom ones
    /// (PROGRESS) included.
    public static func decode(body: Data) throws -> ResultMessage {
        guard let json = try? JSONValue.parse(body), let object = json.objectValue else {
            throw TaskMessageError(reason: .invalidJSON, message: "a result message must be a JSON object")
        }
        guard let taskId = object["task_id"]?.stringValue, let statusText = object["status"]?.stringValue,
            let status = TaskState(rawValue: statusText)
        else {
            throw TaskMessageError(reason: .invalidBody, message: "a result message needs task_id and a non-empty status")
        }
        var result = ResultMessage(
            taskId: taskId, status: status, result: object["result"] ?? .null,
            traceback: object["traceback"]?.stringValue, children: object["children"]?.arrayValue ?? [],
            dateDone: object["date_done"]?.stringValue, parentId: object["parent_id"]?.stringValue)
        result.groupId = object["group_id"]?.stringValue
        return result
    }
}

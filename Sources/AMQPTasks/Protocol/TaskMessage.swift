import AMQP
import FoundationEssentials

/// A task message in Celery's protocol v2 with a JSON body: what a client sends and a worker runs.
///
/// On the wire (real Celery messages are in `Tests/Fixtures/celery/task_messages.json`): the headers carry the task's
/// identity and options (`task`, `id`, `retries`, `eta`, `expires`, `timelimit`, `root_id`, `parent_id`, `group`…),
/// the properties carry `correlation_id` (= id), `reply_to`, `priority`, `delivery_mode=2`, and the body is
/// `[args, kwargs, embed]`.
/// Headers this type does not model (`stamps`, `replaced_task_nesting`, custom `headers={…}`) are kept in
/// `extraHeaders` with their exact AMQP types, so a message decodes and re-encodes unchanged.
public struct TaskMessage: Sendable, Hashable {
    /// Task id (a UUID string); also the message's `correlation_id`.
    public var id: String
    /// Registered task name, e.g. `reports.build`.
    public var name: String
    public var args: [JSONValue]
    public var kwargs: [String: JSONValue]
    /// Callbacks, errbacks, the rest of a chain, and a chord, as Celery signatures.
    public var embed: TaskEmbed
    /// How many times this task was retried before (0 on the first attempt).
    public var retries: Int
    /// Not before this time (ISO 8601, as Celery writes it: `2026-11-25T15:22:28.144239+00:00`).
    public var eta: String?
    /// Not after this time (ISO 8601); an expired task is revoked without running.
    public var expires: String?
    /// Hard and soft time limits (Celery's `timelimit` header, in seconds).
    public var timeLimit: TimeLimit
    public var rootId: String?
    public var parentId: String?
    public var group: String?
    public var groupIndex: Int?
    /// Another name for logs (Celery's `shadow`).
    public var shadow: String?
    /// `gen<pid>@<host>` of the sender.
    public var origin: String?
    /// True: the caller wants no result message. Nil: the worker's default (send one).
    public var ignoreResult: Bool?
    public var argsRepr: String?
    public var kwargsRepr: String?
    /// Every other header, in order, with its AMQP type.
    public var extraHeaders: FieldTable
    /// Where results go (the client's reply queue); nil for fire-and-forget.
    public var replyTo: String?
    public var correlationId: String?
    public var priority: UInt8?
    /// Per-message TTL in milliseconds (Celery sets it from `expires`).
    public var expiration: String?

    /// Hard and soft time limits; nil means none. On the wire (`timelimit`) they are numbers of seconds.
    public struct TimeLimit: Sendable, Hashable {
        /// The handler is stopped (its task fails with `TimeLimitExceeded`) when this has passed.
        public var hard: Duration?
        /// Carried for Celery workers and handlers that look at it; this worker does not act on it.
        public var soft: Duration?
        public init(hard: Duration? = nil, soft: Duration? = nil) {
            self.hard = hard
            self.soft = soft
        }
    }

    public init(
        id: String = UUID.random().lowercasedString, name: String, args: [JSONValue] = [],
        kwargs: [String: JSONValue] = [:], embed: TaskEmbed = TaskEmbed(), retries: Int = 0
    ) {
        self.id = id
        self.name = name
        self.args = args
        self.kwargs = kwargs
        self.embed = embed
        self.retries = retries
        timeLimit = TimeLimit()
        rootId = id
        extraHeaders = ["replaced_task_nesting": .int32(0), "stamped_headers": .void, "stamps": .table([:])]
        correlationId = id
        priority = 0
    }

    /// The `eta` as a date, if set and parseable.
    public var etaDate: Date? { eta.flatMap(CeleryTime.parse) }
    /// The `expires` as a date, if set and parseable.
    public var expiresDate: Date? { expires.flatMap(CeleryTime.parse) }
}

extension TaskMessage {
    /// The AMQP properties and JSON body of this task, as Celery 5 sends them.
    public func encode() -> (properties: BasicProperties, body: Data) {
        var headers: FieldTable = [
            "lang": "py",
            "task": .string(name),
            "id": .string(id),
            "shadow": shadow.map(FieldValue.string) ?? .void,
            "eta": eta.map(FieldValue.string) ?? .void,
            "expires": expires.map(FieldValue.string) ?? .void,
            "group": group.map(FieldValue.string) ?? .void,
            "group_index": groupIndex.map { .int32(Int32(clamping: $0)) } ?? .void,
            "retries": .int32(Int32(clamping: retries)),
            "timelimit": .array([Self.limitValue(timeLimit.hard), Self.limitValue(timeLimit.soft)]),
            "root_id": .string(rootId ?? id),
            "parent_id": parentId.map(FieldValue.string) ?? .void,
            "argsrepr": .string(Self.shortened(argsRepr ?? PythonRepr.tuple(args))),
            "kwargsrepr": .string(Self.shortened(kwargsRepr ?? PythonRepr.repr(.object(kwargs)))),
            "origin": .string(origin ?? Self.defaultOrigin),
            "ignore_result": ignoreResult.map(FieldValue.bool) ?? .void,
        ]
        for (key, value) in extraHeaders where headers[key] == nil { headers[key] = value }
        let body = JSONValue.array([.array(args), .object(kwargs), embed.json]).jsonData()
        let properties = BasicProperties(
            contentType: "application/json", contentEncoding: "utf-8", headers: headers,
            deliveryMode: BasicProperties.DeliveryMode.persistent, priority: priority,
            correlationId: correlationId ?? id, replyTo: replyTo, expiration: expiration)
        return (properties, body)
    }

    /// `gen<pid>@<hostname>`, as Celery clients identify themselves.
    static let defaultOrigin = "gen\(ProcessInfo.processInfo.processIdentifier)@\(ProcessInfo.processInfo.hostName)"

    private static func limitValue(_ limit: Duration?) -> FieldValue {
        guard let seconds = limit?.secondsValue else { return .void }
        if let whole = Int32(exactly: seconds) { return .int32(whole) }
        return .double(seconds)
    }

    /// The longest task id a result can carry (its `correlation_id` is an AMQP short string).
    public static let maxIdBytes = 255

    /// The longest `argsrepr`/`kwargsrepr` sent, in characters, as Celery's `argsrepr_maxsize`: the repr is for
    /// monitoring, and a full repr of a large argument would not fit the AMQP frame (the task could not be sent).
    public static let maxReprLength = 1024

    /// `repr` cut to `maxReprLength` characters, with `...` after a cut, as Celery's `saferepr`.
    static func shortened(_ repr: String) -> String {
        guard repr.utf8.count > maxReprLength, repr.count > maxReprLength else { return repr }
        return repr.prefix(maxReprLength) + "..."
    }

    /// Reads a task from a message's properties and body. Accepts what Celery 5 clients send (protocol v2 with
    /// JSON), and the older form whose body is `{"args": [...], "kwargs": {...}}` with the task in the headers.
    public static func decode(properties: BasicProperties, body: Data) throws -> TaskMessage {
        let headers = TaskHeaders(properties.headers ?? [:])
        let taskId = headers.id?.stringValue ?? properties.correlationId
        let taskName = headers.task?.stringValue
        func failure(_ reason: TaskMessageError.Reason, _ message: String) -> TaskMessageError {
            TaskMessageError(reason: reason, message: message, taskId: taskId, taskName: taskName)
        }
        let contentType = properties.contentType ?? "application/json"
        guard MediaType.isJSON(contentType) else {
            throw failure(
                .unsupportedContentType,
                "content type '\(contentType.prefix(100))' is not supported; send JSON (Celery: task_serializer = \"json\")")
        }
        if let encoding = properties.contentEncoding, !["utf-8", "utf8"].contains(encoding.lowercased()) {
            throw failure(.unsupportedContentType, "content encoding '\(encoding.prefix(100))' is not supported; send utf-8")
        }
        if let compression = headers.compression, !compression.isVoid {
            throw failure(
                .unsupportedContentType,
                "compressed bodies (compression = \(String(describing: compression).prefix(60))) are not supported; send without compression (Celery: task_compression = None)")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(body)
        } catch {
            let preview = String(decoding: body.prefix(80), as: UTF8.self)
            throw failure(.invalidJSON, "the body is not valid JSON: \(preview)")
        }
        guard let name = taskName, !name.isEmpty else {
            if let value = headers.task, !value.isVoid {
                throw failure(.notATaskMessage, "the 'task' header must be a string, got \(String(describing: value).prefix(80))")
            }
            if json.objectValue?["task"] != nil {
                throw failure(
                    .notATaskMessage,
                    "this is a Celery protocol 1 message (the task in the body); send protocol 2, Celery's default since 4.0 (task_protocol = 2)")
            }
            throw failure(.notATaskMessage, "the message has no 'task' header: it is not a Celery v2 task message")
        }
        guard let id = taskId, !id.isEmpty else {
            if let value = headers.id, !value.isVoid {
                throw failure(.notATaskMessage, "the 'id' header must be a string, got \(String(describing: value).prefix(80))")
            }
            throw failure(.notATaskMessage, "the message has no 'id' header and no correlation_id")
        }
        guard id.utf8.count <= maxIdBytes else {
            // Results carry the id as their correlation_id, an AMQP short string: such a task could never be answered.
            throw TaskMessageError(
                reason: .invalidHeader,
                message: "the task id is \(id.utf8.count) bytes long; at most \(maxIdBytes) can be answered", taskId: nil,
                taskName: taskName)
        }
        let args: [JSONValue]
        let kwargs: [String: JSONValue]
        let embed: TaskEmbed
        switch json {
        case .array(let parts) where parts.count == 3:
            guard let a = parts[0].arrayValue, let k = parts[1].objectValue else {
                throw failure(.invalidBody, "the body must be [args (a list), kwargs (an object), embed]")
            }
            guard parts[2].objectValue != nil || parts[2].isNull else {
                throw failure(.invalidBody, "the third element of the body (embed) must be an object")
            }
            (args, kwargs, embed) = (a, k, TaskEmbed(json: parts[2]))
        case .object(let object) where object["args"] != nil || object["kwargs"] != nil:
            guard let a = (object["args"] ?? .array([])).arrayValue,
                let k = (object["kwargs"] ?? .object([:])).objectValue
            else {
                throw failure(.invalidBody, "'args' must be a list and 'kwargs' an object")
            }
            (args, kwargs, embed) = (a, k, TaskEmbed())
        default:
            throw failure(.invalidBody, "the body must be [args, kwargs, embed], got \(json.jsonString.prefix(80))")
        }
        var message = TaskMessage(id: id, name: name, args: args, kwargs: kwargs, embed: embed)
        let header = HeaderReader(headers: headers) { failure(.invalidHeader, $0) }
        message.retries = try header.retries()
        message.eta = try header.time("eta", headers.eta)
        message.expires = try header.time("expires", headers.expires)
        message.timeLimit = try header.timeLimit()
        message.rootId = headers.rootId?.stringValue
        message.parentId = headers.parentId?.stringValue
        message.group = headers.group?.stringValue
        message.groupIndex = headers.groupIndex?.intValue
        message.shadow = headers.shadow?.stringValue
        message.origin = headers.origin?.stringValue
        message.ignoreResult = headers.ignoreResult?.boolValue
        message.argsRepr = headers.argsRepr?.stringValue
        message.kwargsRepr = headers.kwargsRepr?.stringValue
        message.extraHeaders = FieldTable(headers.extra)
        message.replyTo = properties.replyTo
        message.correlationId = properties.correlationId
        message.priority = properties.priority
        message.expiration = properties.expiration
        return message
    }
}

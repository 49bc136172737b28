import AMQP
import Foundation

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
    /// Hard and soft time limits in seconds (Celery's `timelimit` header).
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

    /// Hard and soft time limits in seconds; nil means none.
    public struct TimeLimit: Sendable, Hashable {
        public var hard: Double?
        public var soft: Double?
        public init(hard: Double? = nil, soft: Double? = nil) {
            self.hard = hard
            self.soft = soft
        }
    }

    public init(
        id: String = UUID().uuidString.lowercased(), name: String, args: [JSONValue] = [],
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

/// The `embed` part of a task body: what runs after the task.
public struct TaskEmbed: Sendable, Hashable {
    public var callbacks: [JSONValue]?
    public var errbacks: [JSONValue]?
    /// Remaining tasks of a chain, in reverse order (the next one is last).
    public var chain: [JSONValue]?
    public var chord: JSONValue?

    public init(
        callbacks: [JSONValue]? = nil, errbacks: [JSONValue]? = nil, chain: [JSONValue]? = nil, chord: JSONValue? = nil
    ) {
        self.callbacks = callbacks
        self.errbacks = errbacks
        self.chain = chain
        self.chord = chord
    }

    var json: JSONValue {
        .object([
            "callbacks": callbacks.map(JSONValue.array) ?? .null,
            "errbacks": errbacks.map(JSONValue.array) ?? .null,
            "chain": chain.map(JSONValue.array) ?? .null,
            "chord": chord ?? .null,
        ])
    }

    init(json: JSONValue?) {
        let object = json?.objectValue ?? [:]
        callbacks = object["callbacks"]?.arrayValue
        errbacks = object["errbacks"]?.arrayValue
        chain = object["chain"]?.arrayValue
        chord = object["chord"].flatMap { $0.isNull ? nil : $0 }
    }
}

/// Why a message could not be read as a task. `reason` is a stable code, used in dead-letter headers.
public struct TaskMessageError: Error, Sendable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case unsupportedContentType = "unsupported-content-type"
        case invalidJSON = "invalid-json"
        case invalidBody = "invalid-body"
        case notATaskMessage = "not-a-task-message"
        /// A header the worker needs is of the wrong type or out of range (`eta`, `expires`, `timelimit`,
        /// `retries`, an `id` too long to answer).
        case invalidHeader = "invalid-header"
    }

    public var reason: Reason
    public var message: String
    /// The task id, when the headers had one (so the caller can be told).
    public var taskId: String?
    public var taskName: String?

    public var description: String { "\(reason.rawValue): \(message)" }
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
            "argsrepr": .string(argsRepr ?? PythonRepr.tuple(args)),
            "kwargsrepr": .string(kwargsRepr ?? PythonRepr.repr(.object(kwargs))),
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

    private static func limitValue(_ seconds: Double?) -> FieldValue {
        guard let seconds else { return .void }
        if let whole = Int32(exactly: seconds) { return .int32(whole) }
        return .double(seconds)
    }

    /// The longest task id a result can carry (its `correlation_id` is an AMQP short string).
    public static let maxIdBytes = 255

    private static let modelledHeaders: Set<String> = [
        "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries", "timelimit", "root_id",
        "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
    ]

    /// Reads a task from a message's properties and body. Accepts what Celery 5 clients send (protocol v2 with
    /// JSON), and the older form whose body is `{"args": [...], "kwargs": {...}}` with the task in the headers.
    public static func decode(properties: BasicProperties, body: Data) throws -> TaskMessage {
        let headers = properties.headers ?? [:]
        let taskId = headers["id"]?.stringValue ?? properties.correlationId
        let taskName = headers["task"]?.stringValue
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
        if let compression = headers["compression"], !compression.isVoid {
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
            if let value = headers["task"], !value.isVoid {
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
            if let value = headers["id"], !value.isVoid {
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
        message.eta = try header.time("eta")
        message.expires = try header.time("expires")
        message.timeLimit = try header.timeLimit()
        message.rootId = headers["root_id"]?.stringValue
        message.parentId = headers["parent_id"]?.stringValue
        message.group = headers["group"]?.stringValue
        message.groupIndex = headers["group_index"]?.intValue
        message.shadow = headers["shadow"]?.stringValue
        message.origin = headers["origin"]?.stringValue
        message.ignoreResult = headers["ignore_result"]?.boolValue
        message.argsRepr = headers["argsrepr"]?.stringValue
        message.kwargsRepr = headers["kwargsrepr"]?.stringValue
        message.extraHeaders = FieldTable(headers.entries.filter { !modelledHeaders.contains($0.key) })
        message.replyTo = properties.replyTo
        message.correlationId = properties.correlationId
        message.priority = properties.priority
        message.expiration = properties.expiration
        return message
    }
}

/// Celery's timestamps: ISO 8601 with microseconds and a UTC offset.
public enum CeleryTime {
    /// `2026-11-25T15:22:28.144239+00:00`.
    public static func format(_ date: Date) -> String {
        // Years 1 to 9999, as Python's datetime: a date outside would not survive the round trip anyway.
        let raw = date.timeIntervalSince1970
        let seconds = raw.isFinite ? min(max(raw, -62_135_596_800), 253_402_300_799) : 0
        let whole = seconds.rounded(.down)
        let micros = Int(((seconds - whole) * 1_000_000).rounded())
        var time = time_t(whole)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00", parts.tm_year + 1900, parts.tm_mon + 1,
            parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, min(micros, 999_999))
    }

    /// Parses ISO 8601 with or without fractional seconds and offset (a missing offset means UTC). Only ASCII
    /// digits count (other scripts' digits are refused), and every field must be in range.
    public static func parse(_ text: String) -> Date? {
        let pattern =
            #/^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?$/#
        guard let m = text.wholeMatch(of: pattern),
            let year = Int32(m.1), let month = Int32(m.2), let day = Int32(m.3),
            let hour = Int32(m.4), let minute = Int32(m.5), let second = Int32(m.6),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        var seconds = Double(timegm(&parts))
        if let fraction = m.7 { seconds += Double("0" + fraction) ?? 0 }
        if let zone = m.8, zone != "Z" {
            let digits = zone.filter { $0 >= "0" && $0 <= "9" }
            guard let hours = Double(digits.prefix(2)), let minutes = Double(digits.suffix(2)), hours < 24, minutes < 60
            else { return nil }
            let offset = (hours * 3600 + minutes * 60) * (zone.hasPrefix("-") ? -1 : 1)
            seconds -= offset
        }
        return Date(timeIntervalSince1970: seconds)
    }
}

/// `application/json`, with or without parameters (`application/json; charset=utf-8`): only UTF-8 is taken.
enum MediaType {
    static func isJSON(_ contentType: String) -> Bool {
        let parts = contentType.split(separator: ";", omittingEmptySubsequences: false)
        guard parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "application/json" else { return false }
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return false }
            let name = pair[0].trimmingCharacters(in: .whitespaces).lowercased()
            let value = pair[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
            if name == "charset", !["utf-8", "utf8"].contains(value) { return false }
        }
        return true
    }
}

/// Reads the headers whose type and range a worker relies on, refusing (with what was wrong) any that is off.
struct HeaderReader {
    let headers: FieldTable
    let invalid: (String) -> TaskMessageError

    /// The longest time limit taken as given (about 31 years); longer ones mean "no limit" in practice. The
    /// configuration file takes no longer number of seconds either.
    static let longestTimeLimit: Double = 1e9
    /// Retries above this are refused: no policy retries a task a million times, and counting on could overflow.
    static let mostRetries = 1_000_000

    func retries() throws -> Int {
        guard let value = headers["retries"], !value.isVoid else { return 0 }
        guard let retries = value.intValue, (0...Self.mostRetries).contains(retries) else {
            throw invalid("'retries' must be a whole number from 0 to \(Self.mostRetries), got \(value)")
        }
        return retries
    }

    /// An ISO 8601 time header (`eta`, `expires`), or nil when absent.
    func time(_ name: String) throws -> String? {
        guard let value = headers[name], !value.isVoid else { return nil }
        guard let text = value.stringValue, CeleryTime.parse(text) != nil else {
            throw invalid("'\(name)' must be an ISO 8601 time such as 2026-11-25T15:22:28.144239+00:00, got \(String(describing: value).prefix(80))")
        }
        return text
    }

    /// `timelimit`: `[hard, soft]`, each null or a number of seconds, finite and not negative.
    func timeLimit() throws -> TaskMessage.TimeLimit {
        guard let value = headers["timelimit"], !value.isVoid else { return .init() }
        guard let limits = value.arrayValue, limits.count == 2 else {
            throw invalid("'timelimit' must be [hard, soft] in seconds, got \(String(describing: value).prefix(80))")
        }
        func seconds(_ limit: FieldValue) throws -> Double? {
            if limit.isVoid { return nil }
            guard let seconds = limit.doubleValue, seconds.isFinite, seconds >= 0 else {
                throw invalid("'timelimit' values must be null or seconds, finite and not negative, got \(limit)")
            }
            return seconds > Self.longestTimeLimit ? nil : seconds
        }
        return .init(hard: try seconds(limits[0]), soft: try seconds(limits[1]))
    }
}

import Foundation

/// How and where a task is sent: Celery's `apply_async` options.
public struct SendOptions: Sendable {
    /// The queue the task goes to, through the default exchange. Nil: the client's routes decide (by default
    /// Celery's queue `celery`).
    public var queue: String?
    /// Publish to this exchange instead, with `routingKey`.
    public var exchange: String?
    public var routingKey: String?
    /// Run no sooner than this many seconds from now (Celery's `countdown`).
    public var countdown: Double?
    /// Run no sooner than this time (Celery's `eta`); `countdown` wins if both are set.
    public var eta: Date?
    /// Revoke the task if it has not started this many seconds from now; also the message's TTL.
    public var expiresIn: Double?
    /// 0–255; honoured by queues declared with `x-max-priority`.
    public var priority: UInt8?
    /// True: the worker sends no result message. `result(for:)` then never returns.
    public var ignoreResult: Bool?
    public var timeLimit: TaskMessage.TimeLimit = .init()
    /// Preset task id (a fresh UUID otherwise).
    public var taskId: String?
    public var parentId: String?
    public var rootId: String?
    /// Tasks to send with this task's result when it succeeds (Celery's `link`).
    public var link: [TaskSignature] = []
    /// Tasks to send with this task's id when it fails (Celery's `link_error`).
    public var linkError: [TaskSignature] = []
    /// Extra headers (Celery's `headers={...}`), merged into the task headers.
    public var headers: [String: JSONValue] = [:]

    public init(queue: String? = nil) { self.queue = queue }
}

/// A task call to make later (a Celery signature): name, arguments and options.
public struct TaskSignature: Sendable, Hashable {
    public var name: String
    public var args: [JSONValue]
    public var kwargs: [String: JSONValue]
    public var options: [String: JSONValue]
    /// Immutable signatures do not get the parent's result prepended to their args.
    public var immutable: Bool

    public init(
        _ name: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:], options: [String: JSONValue] = [:],
        immutable: Bool = false
    ) {
        self.name = name
        self.args = args
        self.kwargs = kwargs
        self.options = options
        self.immutable = immutable
    }

    public var json: JSONValue {
        .object([
            "task": .string(name), "args": .array(args), "kwargs": .object(kwargs), "options": .object(options),
            "subtask_type": .null, "immutable": .bool(immutable),
        ])
    }

    public init?(json: JSONValue) {
        guard let object = json.objectValue, let name = object["task"]?.stringValue else { return nil }
        self.name = name
        args = object["args"]?.arrayValue ?? []
        kwargs = object["kwargs"]?.objectValue ?? [:]
        options = object["options"]?.objectValue ?? [:]
        immutable = object["immutable"]?.boolValue ?? false
    }
}

/// Typed task arguments: a `Codable` struct sent as the task's kwargs.
///
/// ```swift
/// struct Add: TaskArguments {
///     static let taskName = "demo.add"
///     static let positionalArgumentNames = ["x", "y"]  // so Celery's add.delay(2, 3) decodes too
///     var x: Int
///     var y: Int
/// }
/// ```
public protocol TaskArguments: Codable, Sendable {
    /// The registered task name.
    static var taskName: String { get }
    /// Names given to positional `args` in order, so callers that send `args` (as Celery's `delay(2, 3)` does)
    /// decode into the same struct. Empty by default: only kwargs are read.
    static var positionalArgumentNames: [String] { get }
}

extension TaskArguments {
    public static var positionalArgumentNames: [String] { [] }

    /// Decodes the arguments of `message`: kwargs, plus positional args named by `positionalArgumentNames`.
    public static func decode(from message: TaskMessage) throws -> Self {
        var object = message.kwargs
        for (name, value) in zip(positionalArgumentNames, message.args) where object[name] == nil {
            object[name] = value
        }
        return try JSONValue.object(object).decode(as: Self.self)
    }
}

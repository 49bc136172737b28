import FoundationEssentials

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

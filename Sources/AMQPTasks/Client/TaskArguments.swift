import FoundationEssentials

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

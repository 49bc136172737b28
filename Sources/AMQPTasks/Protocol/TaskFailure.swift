import AMQP
import FoundationEssentials

/// An exception as Celery carries it: type name, arguments (usually one message) and Python module.
///
/// Celery's client rebuilds it by looking `type` up in the already imported `module`; with `builtins` and a
/// builtin name (`ValueError`, `KeyError`, `RuntimeError`) Python raises exactly that type, with another module it
/// makes a class of that name.
public struct TaskFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var type: String
    public var message: String
    public var module: String
    /// All exception arguments (`exc_message`); `message` is the first.
    public var arguments: [JSONValue]

    public init(type: String, message: String, module: String = "builtins") {
        self.type = type
        self.message = message
        self.module = module
        arguments = [.string(message)]
    }

    init?(json: JSONValue) {
        guard let object = json.objectValue, let type = object["exc_type"]?.stringValue else { return nil }
        self.type = type
        module = object["exc_module"]?.stringValue ?? "builtins"
        switch object["exc_message"] {
        case .array(let args)?:
            arguments = args
            message = args.first.map { $0.stringValue ?? $0.jsonString } ?? ""
        case .string(let text)?:
            arguments = [.string(text)]
            message = text
        default:
            arguments = []
            message = ""
        }
    }

    public var json: JSONValue {
        .object(["exc_type": .string(type), "exc_message": .array(arguments), "exc_module": .string(module)])
    }

    public var description: String { "\(type)(\(message))" }

    /// Celery's error for a task name no worker registered.
    public static func notRegistered(_ name: String) -> TaskFailure {
        TaskFailure(type: "NotRegistered", message: name, module: "celery.exceptions")
    }
}

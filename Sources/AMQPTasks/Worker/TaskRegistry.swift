import FoundationEssentials
import Logging

/// The task names a worker can run and their handlers.
public struct TaskRegistry: Sendable {
    private(set) var handlers: [String: any TaskHandler] = [:]

    public init() {}

    public var names: [String] { handlers.keys.sorted() }

    public func handler(for name: String) -> (any TaskHandler)? { handlers[name] }

    /// Registers a handler by name; a name registered already throws `TaskRegistry.DuplicateName` (a second
    /// handler never silently replaces the first).
    public mutating func register(_ name: String, _ handler: any TaskHandler) throws(DuplicateName) {
        guard handlers[name] == nil else { throw DuplicateName(name: name) }
        handlers[name] = handler
    }

    /// Registers a closure taking the raw task context.
    public mutating func register(_ name: String, _ body: @escaping @Sendable (TaskContext) async throws -> JSONValue)
        throws(DuplicateName)
    {
        try register(name, ClosureTaskHandler(body))
    }

    /// A task name registered twice.
    public struct DuplicateName: Error, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String {
            "task \(name) is registered already: each task name has one handler (rename one, or register it once)"
        }
    }

    /// Registers a typed handler: arguments decoded from the task's kwargs (and named positional args), the
    /// result encoded to JSON.
    public mutating func register<A: TaskArguments, R: Encodable & Sendable>(
        _ type: A.Type, _ body: @escaping @Sendable (A, TaskContext) async throws -> R
    ) throws(DuplicateName) {
        try register(A.taskName, ClosureTaskHandler { context in
            let arguments: A
            do {
                arguments = try A.decode(from: context.message)
            } catch {
                throw TaskFailure(type: "TypeError", message: "arguments of \(A.taskName) do not decode: \(error)")
            }
            return try JSONValue(encoding: try await body(arguments, context))
        })
    }
}

/// A configuration problem, located: `amqp-tasks.toml:12: queues[1].type: expected "classic" or "quorum", got "lazy"`.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Hashable {
    /// The file as given (or `AMQP_TASKS_CONFIG`).
    public var file: String
    /// 1-based line of the key (or of the syntax error); nil when the problem is not on one line (a missing key).
    public var line: Int?
    /// The key's path, e.g. `queues[1].type`, `routes."mail.*".exchange`; empty for syntax errors.
    public var key: String
    public var message: String

    public init(file: String, line: Int?, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if !key.isEmpty { text += "\(key): " }
        return text + message
    }
}

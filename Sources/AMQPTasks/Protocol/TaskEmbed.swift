import AMQP
import FoundationEssentials

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

import AMQP
import FoundationEssentials

/// What a chord has gathered so far: the one message of its `ChordQueue`, rewritten by each member's worker.
///
/// On the wire (JSON, `content_type` application/json):
/// `{"chord_id", "size", "callback": <Celery signature>, "results": {"<group_index>": result}, "failed":
/// {"index", "task_id", "error": <exception>} or null, "finished": bool}`.
/// `finished` is true once the callback (or the errbacks) was sent: the state is then kept only until its queue is
/// deleted, so a member that comes again changes nothing.
public struct ChordState: Sendable, Hashable {
    /// The chord's id: the `group` header of every member.
    public var chordId: String
    /// How many members the chord has (`group_index` 0 to size − 1).
    public var size: Int
    /// The callback, as a Celery signature (`options.task_id`, `options.reply_to`, `options.link_error`…).
    public var callback: JSONValue
    /// The results of the members that succeeded, by `group_index`.
    public var results: [Int: JSONValue]
    /// The first member that failed, if any: the chord then fails.
    public var failed: MemberFailure?
    /// True once the callback or the errbacks were sent.
    public var finished: Bool

    /// The member that made a chord fail.
    public struct MemberFailure: Sendable, Hashable {
        public var index: Int
        public var taskId: String
        public var error: TaskFailure
    }

    public init(chordId: String, size: Int, callback: JSONValue) {
        self.chordId = chordId
        self.size = size
        self.callback = callback
        results = [:]
        failed = nil
        finished = false
    }

    /// What one member brings: its result or its failure.
    public enum Contribution: Sendable, Hashable {
        case succeeded(JSONValue)
        case failed(TaskFailure)
    }

    /// What joining one member decided.
    public enum Decision: Sendable, Hashable {
        /// This member was joined before (a redelivered or repeated member), or the chord finished already:
        /// nothing changes.
        case unchanged
        /// Joined; this many members of `size` are in.
        case waiting(joined: Int)
        /// The last member: the callback is due with these results, in member order.
        case complete([JSONValue])
        /// A member failed: the chord fails.
        case failed(MemberFailure)
    }

    /// Joins member `index` (task `taskId`) with its contribution; the state then says `finished` when the callback
    /// or the errbacks are due. Idempotent: a member that comes again leaves the state as it was, and so does an
    /// index outside `0..<size`, which belongs to no member.
    public mutating func join(index: Int, taskId: String, _ contribution: Contribution) -> Decision {
        guard !finished, (0..<size).contains(index), results[index] == nil else { return .unchanged }
        switch contribution {
        case .failed(let error):
            let failure = MemberFailure(index: index, taskId: taskId, error: error)
            failed = failure
            finished = true
            return .failed(failure)
        case .succeeded(let value):
            results[index] = value
            guard results.count >= size else { return .waiting(joined: results.count) }
            finished = true
            return .complete((0..<size).map { results[$0] ?? .null })
        }
    }

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "chord_id": .string(chordId), "size": .int(size), "callback": callback,
            "results": .object(Dictionary(uniqueKeysWithValues: results.map { (String($0.key), $0.value) })),
            "finished": .bool(finished), "failed": .null,
        ]
        if let failed {
            object["failed"] = .object([
                "index": .int(failed.index), "task_id": .string(failed.taskId), "error": failed.error.json,
            ])
        }
        return .object(object)
    }

    /// Reads a state message body; throws `ChordStateError` when it is not one.
    public static func decode(_ body: Data) throws -> ChordState {
        guard let object = (try? JSONValue.parse(body))?.objectValue, let chordId = object["chord_id"]?.stringValue,
            let size = object["size"]?.intValue, size >= 0, let callback = object["callback"],
            let results = object["results"]?.objectValue
        else {
            throw ChordStateError(
                "the message in the chord queue is not a chord state (it needs chord_id, size, callback and results): \(String(decoding: body.prefix(120), as: UTF8.self))"
            )
        }
        var state = ChordState(chordId: chordId, size: size, callback: callback)
        for (key, value) in results {
            guard let index = Int(key) else { throw ChordStateError("chord \(chordId): result key '\(key)' is not a member index") }
            state.results[index] = value
        }
        if let failed = object["failed"]?.objectValue, let index = failed["index"]?.intValue,
            let taskId = failed["task_id"]?.stringValue, let error = failed["error"].flatMap(TaskFailure.init(json:))
        {
            state.failed = MemberFailure(index: index, taskId: taskId, error: error)
        }
        state.finished = object["finished"]?.boolValue ?? false
        return state
    }

    /// The message that carries this state to its queue: persistent, JSON.
    func outgoing() -> OutgoingMessage {
        OutgoingMessage(
            body: json.jsonData(), exchange: "", routingKey: ChordQueue.name(chordId),
            properties: BasicProperties(
                contentType: "application/json", contentEncoding: "utf-8",
                deliveryMode: BasicProperties.DeliveryMode.persistent),
            mandatory: true)
    }
}

/// A chord's state message could not be read.
public struct ChordStateError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

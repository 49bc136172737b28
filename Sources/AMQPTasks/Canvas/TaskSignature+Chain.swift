/// Building chains from signatures: `a | b | c` or `TaskSignature.chain([a, b, c])`, sent with
/// `TaskClient.send(chain:)`.
extension TaskSignature {
    /// Chains two steps: `b` runs with `a`'s result prepended to its arguments (unless `b` is immutable).
    public static func | (lhs: TaskSignature, rhs: TaskSignature) -> [TaskSignature] { [lhs, rhs] }
    /// Adds a step to a chain.
    public static func | (lhs: [TaskSignature], rhs: TaskSignature) -> [TaskSignature] { lhs + [rhs] }
    /// The steps of a chain, in order (the same as the array; for readability at the call site).
    public static func chain(_ steps: [TaskSignature]) -> [TaskSignature] { steps }

    /// This signature, which ignores its parent's result (Celery's `.si()` / `immutable=True`).
    public var immutableCopy: TaskSignature {
        var copy = self
        copy.immutable = true
        return copy
    }

    /// The task this signature calls as a follow-up of task `parentId` (a link, errback, chain step or chord
    /// callback): `value` first in its arguments unless it is immutable, its `reply_to` option as the reply queue.
    func followUp(id: String, calledWith value: JSONValue, parentId: String, rootId: String?) -> TaskMessage {
        var message = TaskMessage(id: id, name: name, args: immutable ? args : [value] + args, kwargs: kwargs)
        message.rootId = rootId ?? parentId
        message.parentId = parentId
        message.replyTo = options["reply_to"]?.stringValue
        return message
    }
}

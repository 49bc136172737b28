import AMQP
import FoundationEssentials

/// The messages that finish a chord, built from its state: the callback with the members' results in order, or,
/// when a member failed, the chord's FAILURE (Celery's `ChordError`, naming the member) for the callback's caller
/// and the callback's errbacks (`options.link_error`), each called with the callback's id as Celery calls them.
struct ChordFiring {
    /// The callback's signature, as the chord's state holds it.
    let callback: TaskSignature
    let chordId: String
    /// Where a signature that names no queue or exchange goes: the queue the member came from.
    let defaultQueue: String
    /// The member whose join finished the chord (the callback's parent).
    let parentId: String
    let rootId: String?

    init?(state: ChordState, defaultQueue: String, parentId: String, rootId: String?) {
        guard let callback = TaskSignature(json: state.callback) else { return nil }
        self.callback = callback
        chordId = state.chordId
        self.defaultQueue = defaultQueue
        self.parentId = parentId
        self.rootId = rootId
    }

    /// The callback's task id: the one the sender chose (`options.task_id`), else one derived from the chord id,
    /// so a chord fired twice (see `ChordBarrier` for when it could be) names one task twice, never two tasks.
    var callbackId: String { callback.options["task_id"]?.stringValue ?? "\(chordId).callback" }

    /// The callback, called with the results in member order.
    func callbackMessage(results: [JSONValue]) -> OutgoingMessage {
        var message = task(callback, id: callbackId, prepending: .array(results))
        if let link = callback.options["link"]?.arrayValue, !link.isEmpty { message.embed.callbacks = link }
        if let errbacks = callback.options["link_error"]?.arrayValue, !errbacks.isEmpty {
            message.embed.errbacks = errbacks
        }
        return outgoing(message, for: callback)
    }

    /// The chord's FAILURE for the callback's caller when the callback reached no queue (routed through an exchange
    /// without a matching binding, which is known only once the chord's transaction committed); nil when it has no
    /// `reply_to`. The chord is finished then: its caller is told rather than left waiting for a callback that
    /// never runs.
    func callbackLostMessage(_ error: AMQPError) -> OutgoingMessage? {
        guard let replyTo = callback.options["reply_to"]?.stringValue, !replyTo.isEmpty else { return nil }
        let failure = TaskFailure(
            type: "ChordError", message: "the chord's callback \(callback.name) reached no queue: \(error.message)",
            module: "celery.exceptions")
        var result = ResultMessage.failure(
            callbackId, failure, traceback: "chord \(chordId): its callback was dropped by the broker\n", parentId: parentId)
        result.groupId = callback.options["group_id"]?.stringValue
        var outgoing = result.outgoing(replyTo: replyTo, persistent: true)
        outgoing.mandatory = true
        return outgoing
    }

    /// The chord's FAILURE for the callback's caller (nil when it has no `reply_to`) and its errbacks.
    func failureMessages(_ failure: ChordState.MemberFailure) -> [OutgoingMessage] {
        var messages: [OutgoingMessage] = []
        let error = TaskFailure(
            type: "ChordError",
            message: "Dependency \(failure.taskId) raised \(failure.error.type)('\(failure.error.message)')",
            module: "celery.exceptions")
        if let replyTo = callback.options["reply_to"]?.stringValue, !replyTo.isEmpty {
            var result = ResultMessage.failure(
                callbackId, error,
                traceback: "chord \(chordId): member \(failure.index) (\(failure.taskId)) failed: \(failure.error)\n",
                parentId: parentId)
            result.groupId = callback.options["group_id"]?.stringValue
            var outgoing = result.outgoing(replyTo: replyTo, persistent: true)
            outgoing.mandatory = true
            messages.append(outgoing)
        }
        for errback in (callback.options["link_error"]?.arrayValue ?? []).compactMap(TaskSignature.init(json:)) {
            let message = task(
                errback, id: errback.options["task_id"]?.stringValue ?? UUID.random().lowercasedString,
                prepending: .string(callbackId))
            messages.append(outgoing(message, for: errback))
        }
        return messages
    }

    /// The queues the default exchange must find for these messages: checked before the transaction, since an
    /// unroutable publish is known only once it is committed.
    static func queuesToCheck(_ messages: [OutgoingMessage]) -> Set<String> {
        Set(messages.filter { $0.exchange.isEmpty }.map(\.routingKey))
    }

    private func task(_ signature: TaskSignature, id: String, prepending value: JSONValue) -> TaskMessage {
        signature.followUp(id: id, calledWith: value, parentId: parentId, rootId: rootId)
    }

    private func outgoing(_ message: TaskMessage, for signature: TaskSignature) -> OutgoingMessage {
        let (properties, body) = message.encode()
        let (exchange, routingKey) = Self.destination(of: signature, defaultQueue: defaultQueue)
        return OutgoingMessage(
            body: body, exchange: exchange, routingKey: routingKey, properties: properties, mandatory: true)
    }

    /// Where a signature's task goes: its `exchange` and `routing_key` options, else its `queue`, else `defaultQueue`.
    static func destination(of signature: TaskSignature, defaultQueue: String) -> (exchange: String, routingKey: String) {
        if let exchange = signature.options["exchange"]?.stringValue, !exchange.isEmpty {
            return (exchange, signature.options["routing_key"]?.stringValue ?? signature.name)
        }
        return ("", signature.options["queue"]?.stringValue ?? defaultQueue)
    }
}

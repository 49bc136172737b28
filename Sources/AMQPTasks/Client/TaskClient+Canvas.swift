import AMQP
import FoundationEssentials

/// Groups, chords and chains, sent as Celery's canvas sends them, so Celery and Swift workers run them alike.
///
/// - A group: every member carries the headers `group` (the group id) and `group_index` (its place); their results
///   carry `group_id`. `GroupResult` gathers them in order.
/// - A chord: a group whose members also carry the callback in their embed (`chord`, with `options.task_id`,
///   `reply_to`, `group_id`, and `chord_size`). Before any member is sent, the chord's queue (`ChordQueue`) is
///   declared and given the chord's first state; the workers that record the members gather them there, and the one
///   that records the last sends the callback (`ChordBarrier`). Nothing waits or polls meanwhile: the client may
///   exit once `send(chord:…)` returned, and any process can read the callback's result from the reply queue.
/// - A chain: the first task carries the rest in its embed (`chain`, reversed, each with its preset `task_id` and
///   `reply_to`); each worker sends the next step with the result.
///
/// A signature's options that the sending honours: `task_id`, `queue`, and `exchange` with `routing_key`; the rest
/// of `SendOptions` applies to every task sent.
extension TaskClient {
    /// Sends the members of a group; returns once the broker confirmed every one. Throws the first member's
    /// `TaskClientError` when some were not taken (the others were sent).
    public func send(group members: [TaskSignature], groupId: String? = nil, options: SendOptions = SendOptions())
        async throws -> GroupResult
    {
        let id = groupId ?? UUID.random().lowercasedString
        let prepared = members.enumerated().map { index, signature in
            var (message, options) = taskMessage(for: signature, options: options)
            message.group = id
            message.groupIndex = index
            return (message, options)
        }
        try await sendAll(prepared)
        return GroupResult(id: id, taskIds: prepared.map { $0.0.id })
    }

    /// Sends a chord: the members, and the callback that runs once, with their results in member order, when the
    /// last member finished; when a member fails, the callback never runs, its caller gets a `ChordError` FAILURE
    /// naming the member, and `errbacks` (and the callback's own `link_error`) run once with the callback's id.
    /// Returns once the broker confirmed the chord's state and every member. When some member could not be sent, the
    /// chord is abandoned (its queue deleted: the members sent already run as plain tasks) and the error is thrown.
    public func send(
        chord members: [TaskSignature], callback: TaskSignature, errbacks: [TaskSignature] = [],
        chordId: String? = nil, options: SendOptions = SendOptions()
    ) async throws -> ChordResult {
        let id = chordId ?? UUID.random().lowercasedString
        var callback = callback
        let callbackId = callback.options["task_id"]?.stringValue ?? UUID.random().lowercasedString
        callback.options["task_id"] = .string(callbackId)
        if callback.options["reply_to"] == nil { callback.options["reply_to"] = .string(replyQueue) }
        callback.options["group_id"] = .string(id)
        routeIfUnrouted(&callback, options: options)
        var allErrbacks = (callback.options["link_error"]?.arrayValue ?? []).compactMap(TaskSignature.init(json:))
        allErrbacks += errbacks
        for index in allErrbacks.indices { routeIfUnrouted(&allErrbacks[index], options: options) }
        if !allErrbacks.isEmpty { callback.options["link_error"] = .array(allErrbacks.map(\.json)) }
        guard !members.isEmpty else {
            // Celery calls the callback of an empty chord at once, with no results.
            var (message, callbackOptions) = taskMessage(for: callback, options: options)
            if !callback.immutable { message.args = [.array([])] + message.args }
            message.ignoreResult = nil  // `options` are the members'; the callback answers its caller.
            callbackOptions.taskId = callbackId
            try await sendAll([(message, callbackOptions)])
            return ChordResult(group: GroupResult(id: id, taskIds: []), callbackId: callbackId)
        }
        var chordJSON = callback.json.objectValue ?? [:]
        chordJSON["chord_size"] = .int(members.count)
        let state = ChordState(chordId: id, size: members.count, callback: .object(chordJSON))
        try await declare(state)
        let prepared = members.enumerated().map { index, signature in
            var (message, options) = taskMessage(for: signature, options: options)
            message.group = id
            message.groupIndex = index
            message.embed.chord = .object(chordJSON)
            return (message, options)
        }
        do {
            try await sendAll(prepared)
        } catch {
            // Not every member was sent: the chord can never finish. Without its queue, the members sent already run
            // as plain tasks (their workers find the chord gone); send the chord again under a new id.
            if let channel = try? await openChannel() {
                _ = try? await channel.deleteQueue(ChordQueue.name(id))
                try? await channel.close()
            }
            throw error
        }
        return ChordResult(group: GroupResult(id: id, taskIds: prepared.map { $0.0.id }), callbackId: callbackId)
    }

    /// Sends a chain: `steps[0]` now, each next step by the worker that finished the one before, with its result
    /// prepended to the step's arguments (unless the step is immutable). A failed step ends the chain. Returns once
    /// the broker confirmed the first task.
    public func send(chain steps: [TaskSignature], options: SendOptions = SendOptions()) async throws -> ChainResult {
        guard !steps.isEmpty else {
            throw TaskClientError(.badArguments, operation: "send chain", message: "a chain needs at least one task; nothing was sent")
        }
        let later = steps.dropFirst().map { step -> TaskSignature in
            var step = step
            if step.options["task_id"] == nil { step.options["task_id"] = .string(UUID.random().lowercasedString) }
            if step.options["reply_to"] == nil { step.options["reply_to"] = .string(replyQueue) }
            routeIfUnrouted(&step, options: options)
            return step
        }
        var (first, firstOptions) = taskMessage(for: steps[0], options: options)
        if !later.isEmpty { first.embed.chain = later.reversed().map(\.json) }
        try await sendAll([(first, firstOptions)])
        let ids = [first.id] + later.map { $0.options["task_id"]?.stringValue ?? "" }
        return ChainResult(taskIds: ids)
    }

    /// The message of one signature and the options it is sent with.
    private func taskMessage(for signature: TaskSignature, options: SendOptions) -> (TaskMessage, SendOptions) {
        var options = options
        if let id = signature.options["task_id"]?.stringValue { options.taskId = id } else { options.taskId = nil }
        if let queue = signature.options["queue"]?.stringValue {
            options.queue = queue
            options.exchange = nil
        }
        if let exchange = signature.options["exchange"]?.stringValue {
            options.exchange = exchange
            options.routingKey = signature.options["routing_key"]?.stringValue
        }
        var message = message(signature.name, args: signature.args, kwargs: signature.kwargs, options: options)
        if let link = signature.options["link"]?.arrayValue, !link.isEmpty {
            message.embed.callbacks = (message.embed.callbacks ?? []) + link
        }
        if let errbacks = signature.options["link_error"]?.arrayValue, !errbacks.isEmpty {
            message.embed.errbacks = (message.embed.errbacks ?? []) + errbacks
        }
        if let replyTo = signature.options["reply_to"]?.stringValue { message.replyTo = replyTo }
        return (message, options)
    }

    /// Gives a signature that a worker sends later the destination this client would send it to, so it goes where
    /// the client's routes (or `options`) say rather than to the queue of the task that finished before it.
    private func routeIfUnrouted(_ signature: inout TaskSignature, options: SendOptions) {
        guard signature.options["queue"] == nil, signature.options["exchange"] == nil else { return }
        let (exchange, routingKey) =
            options.exchange.map { ($0, options.routingKey ?? options.queue ?? signature.name) }
            ?? options.queue.map { ("", $0) } ?? routes.target(for: signature.name).exchangeAndRoutingKey
        if exchange.isEmpty {
            signature.options["queue"] = .string(routingKey)
        } else {
            signature.options["exchange"] = .string(exchange)
            signature.options["routing_key"] = .string(routingKey)
        }
    }

    /// Sends prepared messages, in batches of the same destination; throws the first refusal.
    private func sendAll(_ prepared: [(TaskMessage, SendOptions)]) async throws {
        var batches: [String: [Int]] = [:]
        var order: [String] = []
        for (index, (_, options)) in prepared.enumerated() {
            let key = "\(options.exchange ?? "-")\u{0}\(options.routingKey ?? "-")\u{0}\(options.queue ?? "-")\u{0}\(options.taskId == nil)"
            if batches[key] == nil { order.append(key) }
            batches[key, default: []].append(index)
        }
        for key in order {
            let indices = batches[key]!
            // The options of a batch differ only in task ids, which the messages carry already.
            let results = try await sendBatch(indices.map { prepared[$0].0 }, options: prepared[indices[0]].1)
            for result in results { _ = try result.get() }
        }
    }

    /// Declares the chord's queue and puts its first state in it, confirmed, before any member is sent. A chord id
    /// whose queue exists already is refused: a second state in one queue would let two workers fire the callback.
    private func declare(_ state: ChordState) async throws {
        let queue = ChordQueue.name(state.chordId)
        do {
            let probe = try await openChannel()
            var exists = true
            do {
                _ = try await probe.inspectQueue(queue)
            } catch let error as AMQPError where error.replyCode == .notFound {
                exists = false
            }
            if probe.isOpen { try? await probe.close() }
            if exists {
                throw TaskClientError(
                    .badArguments, operation: "send chord",
                    message: "a chord with id \(state.chordId) is under way already (its queue \(queue) exists); give each chord its own id. Nothing was sent")
            }
            let channel = try await openChannel()
            do {
                try await channel.confirmSelect()
                try await channel.declareQueue(queue, durable: true, arguments: ChordQueue.arguments)
                try await channel.publish(state.outgoing())
                try? await channel.close()
            } catch {
                if channel.isOpen { try? await channel.close() }
                throw error
            }
        } catch let error as TaskClientError {
            throw error
        } catch {
            throw TaskClientError(
                .notConfirmed, operation: "send chord", taskId: nil,
                message: "the chord's queue \(queue) could not be declared and given its state, so no member was sent; send the chord again",
                cause: error as? AMQPError)
        }
    }
}

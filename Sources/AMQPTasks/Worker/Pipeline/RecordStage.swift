import AMQP
import FoundationEssentials
import Glibc
import Logging
import Tracing

/// Stage 4: records a verdict so it survives a crash, returning once the broker confirmed every message of it: the
/// result (SUCCESS, FAILURE, REVOKED) on the caller's `reply_to`, follow-up tasks (links, the next step of a
/// chain, errbacks), a retry or a parked task in the delay levels, or a dead letter in `<queue>.dead`. Only then
/// is the task acknowledged (stage 5, `TaskProcessor`).
struct RecordStage: Sendable {
    let outbox: any TaskOutbox
    let queue: String
    let configuration: WorkerConfiguration
    let logger: Logger

    private var hostname: String { configuration.hostname }

    /// Records `verdict` for `task`; returns what was recorded.
    func record(_ verdict: Verdict, of task: TaskContext, received: ReceivedMessage) async throws -> TaskOutcome {
        let message = task.message
        switch verdict {
        case .succeeded(let value, let runtime):
            try await publishResult(.success(message.id, value, parentId: message.parentId), for: message)
            try await sendFollowUps(of: message, result: value, trace: task.traceSlot)
            return .succeeded(value, runtime: runtime)
        case .failed(let failure, let runtime):
            try await recordFailure(
                failure, traceback: "amqp-worker \(hostname): \(failure)\n", of: message, trace: task.traceSlot)
            return .failed(failure, runtime: runtime)
        case .retry(let request, let runtime):
            return try await retry(message, request: request, runtime: runtime, trace: task.traceSlot)
        case .revoke(let reason):
            try await publishResult(
                ResultMessage(
                    taskId: message.id, status: .revoked,
                    result: TaskFailure(type: "TaskRevokedError", message: reason.rawValue, module: "celery.exceptions")
                        .json,
                    dateDone: CeleryTime.format(Date())),
                for: message)
            return .revoked(reason)
        case .reject(var rejection):
            rejection.taskId = rejection.taskId ?? message.id
            rejection.taskName = rejection.taskName ?? message.name
            let failure =
                rejection.callerFailure
                ?? TaskFailure(type: "TaskRejected", message: rejection.message, module: "amqp_tasks")
            let answer = ResultMessage.failure(message.id, failure, parentId: message.parentId)
            if rejection.callerMustBeTold {
                try await publishResult(answer, for: message)
                try await deadLetter(received, reason: rejection.reason, error: rejection.message)
            } else {
                try await deadLetter(received, reason: rejection.reason, error: rejection.message)
                // The message is safe in <queue>.dead already: telling the caller is best effort.
                try? await publishResult(answer, for: message)
            }
            return .rejected(rejection)
        case .park(let wait):
            let step = Duration.seconds(NativeDelayedDelivery.delaySeconds(for: wait))
            // The copy is the worker's own publish: it cannot carry the producer's validated user_id (406).
            var properties = received.properties
            properties.userId = nil
            // Marked as a new message, so the worker that parked it knows a redelivery of this one from the copy.
            var headers = properties.headers ?? [:]
            headers[DeliveryMemory.parkedCopyHeader] = .string(UUID().uuidString)
            properties.headers = headers
            try await outbox.park(
                OutgoingMessage(body: received.body, routingKey: queue, properties: properties), for: queue, after: wait)
            return .deferred(step: step)
        }
    }

    /// Moves a message that never became a task to `<queue>.dead`, then tells its caller where it can.
    func reject(_ received: ReceivedMessage, _ rejection: TaskRejection) async throws {
        try await deadLetter(received, reason: rejection.reason, error: rejection.message)
        if let id = rejection.taskId, let failure = rejection.callerFailure, let replyTo = received.properties.replyTo {
            try? await publish(.failure(id, failure), to: replyTo)
        }
    }

    /// Best effort: a FAILURE to the caller of a task given up on, where it can be delivered.
    func tellCallerNotRecorded(_ received: ReceivedMessage, error: String) async {
        guard let id = received.claimedTaskId, let replyTo = received.properties.replyTo, !replyTo.isEmpty else { return }
        let failure = TaskFailure(
            type: "OutcomeNotRecorded",
            message: "the worker could not record this task's outcome and moved it to \(DeadLetters.name(for: queue)): \(error)",
            module: "amqp_tasks")
        try? await publish(.failure(id, failure), to: replyTo)
    }

    /// STARTED, before the handler runs (Celery's `task_track_started`): transient, like Celery's.
    func recordStarted(_ message: TaskMessage) async throws {
        try await publishResult(
            ResultMessage(
                taskId: message.id, status: .started,
                result: ["pid": .int(Int(getpid())), "hostname": .string(hostname)], parentId: message.parentId),
            for: message, persistent: false)
    }

    /// A reporter of the task's custom states (`TaskContext.updateState`), or nil when nobody would receive them
    /// (no `reply_to`, or the result is ignored). Each state is transient; one over `maxResultSize` is dropped with
    /// a log line (never turned into a FAILURE: the task still runs).
    func progressReporter(for message: TaskMessage) -> ProgressReporter? {
        guard let replyTo = message.replyTo, !replyTo.isEmpty, message.ignoreResult != true else { return nil }
        let logger = logger
        let limit = configuration.maxResultSize
        return ProgressReporter(logger: logger) { [self] state in
            let size = state.json.jsonData().count
            guard size <= limit else {
                logger.warning("dropped a \(state.status) state of \(state.taskId): \(size) bytes, over \(limit) ([worker] max_result_size)")
                return
            }
            var outgoing = state.outgoing(replyTo: replyTo, persistent: false)
            outgoing.mandatory = true
            do {
                try await outbox.publish(outgoing)
            } catch let error as AMQPError where error.kind == .unroutable {
                throw ProgressReporter.CallerGone(replyQueue: replyTo)
            }
        }
    }

    /// Copies the message to `<queue>.dead` with the reason, and returns when the broker confirmed it. The
    /// dead-letter exchange and queue are declared first (cheap, and rare), so one deleted by hand comes back instead
    /// of every later dead letter failing.
    func deadLetter(_ received: ReceivedMessage, reason: String, error: String) async throws {
        let quorum = configuration.topology?.queue(named: queue)?.kind == .quorum
        try await outbox.declareDeadLetters(for: queue, quorum: quorum)
        do {
            try await outbox.publish(
                DeadLetters.message(
                    for: received, queue: queue, reason: reason, error: String(error.prefix(4000)), worker: hostname))
        } catch let refusal as AMQPError where refusal.kind == .invalidArgument && refusal.libraryStatus != nil {
            // The dead-letter headers do not fit in one frame beside the message's own: without them it fits (it was
            // delivered so), and the reason stays in this log. Retrying the same copy would fail the same way.
            logger.error(
                "dead-lettering to \(DeadLetters.name(for: queue)) without the reason headers (reason \(reason): \(error.prefix(500))): \(refusal)")
            try await outbox.publish(DeadLetters.bareMessage(for: received, queue: queue))
        }
    }

    private func recordFailure(_ failure: TaskFailure, traceback: String, of message: TaskMessage, trace: TaskTraceSlot)
        async throws
    {
        try await publishResult(
            .failure(message.id, failure, traceback: traceback, parentId: message.parentId), for: message)
        try await sendErrbacks(of: message, trace: trace)
    }

    private func retry(_ message: TaskMessage, request: TaskRetry, runtime: Duration?, trace: TaskTraceSlot) async throws
        -> TaskOutcome
    {
        let policy = configuration.retryPolicy(for: message.name)
        let maxRetries = request.maxRetries ?? policy.maxRetries
        guard message.retries < maxRetries else {
            logger.error(
                "retry requested but \(maxRetries) retries are used up: \(request.reason)",
                metadata: ["task_id": "\(message.id)", "task": "\(message.name)"])
            try await recordFailure(
                request.reason, traceback: "MaxRetriesExceededError: \(request.reason)\n", of: message, trace: trace)
            return .failed(request.reason, runtime: runtime)
        }
        // A negative countdown is no countdown: the retry policy chooses the delay.
        let requested = request.countdown.flatMap { $0 >= .zero ? $0.secondsValue : nil }
        let delay = min(requested ?? policy.delay(afterRetries: message.retries).secondsValue, Self.longestDelay)
        var next = message
        next.retries += 1
        next.parentId = message.id
        next.eta = CeleryTime.format(Date().addingTimeInterval(delay))
        // The retry continues the trace as a child of this run, as a retry Celery publishes from its task does.
        let span = trace.startPublish(of: &next, to: queue)
        defer { span?.end() }
        let (properties, body) = next.encode()
        try await publishResult(
            ResultMessage(
                taskId: message.id, status: .retry, result: request.reason.json,
                traceback: "Retry in \(Int(delay))s: \(request.reason)\n",
                children: [.array([.array([.string(message.id), .null]), .null])], parentId: message.parentId),
            for: message)
        try await outbox.park(
            OutgoingMessage(body: body, routingKey: queue, properties: properties), for: queue, after: .clampedSeconds(delay))
        return .retried(request.reason, delay: .clampedSeconds(delay), retries: next.retries, maxRetries: maxRetries)
    }

    /// Publishes a result or state to the task's `reply_to`, unless it has none or asked to ignore results.
    /// Final states are persistent unless the worker's `persistentResults` is off, so a confirmed result survives a
    /// broker restart as the task message it answers would have; progress states (STARTED, RETRY) are transient.
    private func publishResult(_ result: ResultMessage, for message: TaskMessage, persistent: Bool? = nil) async throws {
        guard let replyTo = message.replyTo, !replyTo.isEmpty, message.ignoreResult != true else { return }
        let persistent = persistent ?? (result.status.isFinal && configuration.persistentResults)
        var result = result
        // Every state of a group or chord member names its group, as Celery's backends write it.
        result.groupId = result.groupId ?? message.group
        try await publish(result, to: replyTo, persistent: persistent)
    }

    private func publish(_ result: ResultMessage, to replyTo: String, persistent: Bool = false) async throws {
        var outgoing = result.outgoing(replyTo: replyTo, persistent: persistent)
        let limit = configuration.maxResultSize
        if outgoing.body.count > limit {
            // Never hand the broker a message it may refuse by closing the channel: say how large it was instead.
            logger.error("the result of \(result.taskId) is \(outgoing.body.count) bytes, over \(limit); sending a FAILURE instead")
            let failure = TaskFailure(
                type: "ResultTooLarge",
                message: "the result is \(outgoing.body.count) bytes; this worker sends at most \(limit) ([worker] max_result_size)",
                module: "amqp_tasks")
            var tooLarge = ResultMessage.failure(result.taskId, failure, parentId: result.parentId)
            tooLarge.groupId = result.groupId
            outgoing = tooLarge.outgoing(replyTo: replyTo, persistent: persistent)
        }
        outgoing.mandatory = true
        do {
            try await outbox.publish(outgoing)
        } catch let error as AMQPError where error.kind == .unroutable {
            // The caller's reply queue is gone (client stopped, queue expired): nobody can receive this result.
            logger.warning("result of \(result.taskId) not delivered: reply queue \(replyTo) does not exist")
        }
    }

    /// Callbacks (`link`) and the next task of a chain, each sent with this task's result.
    private func sendFollowUps(of message: TaskMessage, result: JSONValue, trace: TaskTraceSlot) async throws {
        for callback in (message.embed.callbacks ?? []).compactMap(TaskSignature.init(json:)) {
            try await send(callback, after: message, prepending: result, trace: trace)
        }
        if var chain = message.embed.chain, let nextJSON = chain.popLast(), let next = TaskSignature(json: nextJSON) {
            try await send(next, after: message, prepending: result, chain: chain, trace: trace)
        }
    }

    /// Errbacks (`link_error`), each sent with this task's id, as Celery does for tasks it cannot call in-process.
    private func sendErrbacks(of message: TaskMessage, trace: TaskTraceSlot) async throws {
        for errback in (message.embed.errbacks ?? []).compactMap(TaskSignature.init(json:)) {
            try await send(errback, after: message, prepending: .string(message.id), trace: trace)
        }
    }

    private func send(
        _ signature: TaskSignature, after parent: TaskMessage, prepending value: JSONValue, chain: [JSONValue]? = nil,
        trace: TaskTraceSlot
    ) async throws {
        let options = signature.options
        var next = signature.followUp(
            id: options["task_id"]?.stringValue ?? UUID.random().lowercasedString, calledWith: value,
            parentId: parent.id, rootId: parent.rootId)
        next.embed = TaskEmbed(chain: chain?.isEmpty == false ? chain : nil)
        next.replyTo = next.replyTo ?? parent.replyTo
        let targetQueue = options["queue"]?.stringValue ?? queue
        let span = trace.startPublish(of: &next, to: targetQueue)
        defer { span?.end() }
        let (properties, body) = next.encode()
        try await outbox.publish(OutgoingMessage(body: body, routingKey: targetQueue, properties: properties, mandatory: true))
    }

    /// The longest countdown or ETA wait taken as given: ten years.
    static let longestDelay: Double = 315_360_000
}

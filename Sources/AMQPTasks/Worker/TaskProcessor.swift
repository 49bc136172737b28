import AMQP
import Foundation
import Logging

/// Takes one delivery from decode to acknowledgement, on one consumer's channel.
///
/// The order is the product's promise: record the outcome (result, retry, dead letter), wait for the broker's
/// confirm, then ack. If recording fails, the task is not acked: it is requeued (or, if the channel is gone,
/// the broker requeues it), so it runs again rather than vanishing.
struct TaskProcessor {
    let worker: Worker
    let channel: Channel
    let queue: String
    /// Celery events, when the worker sends them.
    let events: EventPublisher?

    private var logger: Logger { worker.logger }
    private var hostname: String { worker.configuration.hostname }

    func process(_ delivery: Delivery) async {
        let key = Self.attemptKey(delivery)
        let limit = worker.configuration.recordAttempts
        if worker.recordAttempts.failures(of: key) >= limit {
            // Given up already, but the dead letter could not be made then (its channel had closed): make it now, on
            // this channel, without running the task again.
            let reason = worker.recordAttempts.lastError(of: key) ?? "earlier attempts failed"
            await giveUp(delivery, key: key, error: reason, attempts: limit)
            return
        }
        do {
            try await record(delivery)
            worker.recordAttempts.recorded(key)
            // The outcome is confirmed; the ack need not be waited for (if it is lost, the task is redelivered).
            delivery.sendAck()
        } catch is CancellationError {
            logger.warning("interrupted by shutdown; requeueing the task")
            try? await delivery.nack(requeue: true)
        } catch {
            await recordingFailed(delivery, key: key, error: error)
        }
    }

    /// The outcome could not be recorded. The task is requeued to run again, up to `recordAttempts` times in this
    /// worker (with a growing pause); then it goes to `<queue>.dead` with reason `outcome-not-recorded`, and the
    /// caller is sent a FAILURE if its reply queue takes it. An error that cannot go away by trying again (a name
    /// AMQP cannot carry) gives up at once.
    private func recordingFailed(_ delivery: Delivery, key: String, error: Error) async {
        let limit = worker.configuration.recordAttempts
        let permanent = (error as? AMQPError)?.kind == .invalidArgument
        let attempts = worker.recordAttempts.failed(key, error: "\(error)", permanent ? limit : 1)
        if attempts >= limit {
            await giveUp(delivery, key: key, error: "\(error)", attempts: attempts)
            return
        }
        logger.error(
            "could not record the outcome of task \(key), so it is not acknowledged and will run again (attempt \(attempts) of \(limit)): \(error)"
        )
        let pause = min(30, Double(1 << min(attempts - 1, 5)))
        if !Task.isCancelled { try? await Task.sleep(for: .clampedSeconds(pause)) }
        try? await delivery.nack(requeue: true)
    }

    /// Moves a task whose outcome could not be recorded to `<queue>.dead` (reason `outcome-not-recorded`), tells its
    /// caller, and acks it. If even that fails (the channel closed under the failed attempt), the task is requeued:
    /// its next delivery, on a new channel, comes straight here without running again.
    private func giveUp(_ delivery: Delivery, key: String, error: String, attempts: Int) async {
        logger.error(
            "could not record the outcome of task \(key) (attempt \(attempts) of \(worker.configuration.recordAttempts)): \(error); moving it to \(DeadLetters.name(for: queue))"
        )
        do {
            try await deadLetter(delivery, reason: "outcome-not-recorded", error: error)
            await tellCallerNotRecorded(delivery, error: error)
            worker.recordAttempts.recorded(key)
            delivery.sendAck()
        } catch {
            logger.error("could not move task \(key) to \(DeadLetters.name(for: queue)) now: \(error); it is requeued")
            if !Task.isCancelled { try? await Task.sleep(for: .seconds(1)) }
            try? await delivery.nack(requeue: true)
        }
    }

    /// Best effort: a FAILURE to the caller of a task given up on, where it can be delivered.
    private func tellCallerNotRecorded(_ delivery: Delivery, error: String) async {
        guard let id = delivery.properties.headers?["id"]?.stringValue ?? delivery.properties.correlationId,
            let replyTo = delivery.properties.replyTo, !replyTo.isEmpty
        else { return }
        let failure = TaskFailure(
            type: "OutcomeNotRecorded",
            message: "the worker could not record this task's outcome and moved it to \(DeadLetters.name(for: queue)): \(error)",
            module: "amqp_tasks")
        try? await publish(.failure(id, failure), to: replyTo)
    }

    /// What a task is known by when counting attempts: its id, else its correlation id, else its content.
    static func attemptKey(_ delivery: Delivery) -> String {
        if let id = delivery.properties.headers?["id"]?.stringValue ?? delivery.properties.correlationId {
            return String(id.prefix(300))
        }
        var hasher = Hasher()
        hasher.combine(delivery.body.prefix(4096))
        hasher.combine(delivery.body.count)
        return "message \(hasher.finalize())"
    }

    /// Runs the task (or refuses it) and records the outcome; returns when the outcome is confirmed by the broker.
    private func record(_ delivery: Delivery) async throws {
        if let problem = delivery.contentProblem {
            logger.error("rejected a message from \(queue): \(problem)")
            try await deadLetter(delivery, reason: "malformed-headers", error: problem)
            return
        }
        let limit = worker.configuration.maxMessageSize
        guard delivery.body.count <= limit else {
            let error = "the body is \(delivery.body.count) bytes; this worker takes at most \(limit) ([worker] max_message_size)"
            logger.error("rejected a message from \(queue): \(error)")
            try await deadLetter(delivery, reason: "message-too-large", error: error)
            if let id = delivery.properties.headers?["id"]?.stringValue, let replyTo = delivery.properties.replyTo {
                try? await publish(.failure(id, TaskFailure(type: "MessageTooLarge", message: error, module: "amqp_tasks")), to: replyTo)
            }
            return
        }
        var message: TaskMessage
        do {
            message = try TaskMessage.decode(properties: delivery.properties, body: delivery.body)
        } catch let error as TaskMessageError {
            logger.error("rejected a message from \(queue): \(error)")
            try await deadLetter(delivery, reason: error.reason.rawValue, error: error.message)
            if let id = error.taskId {
                await events?.send("task-rejected", ["uuid": .string(id), "requeue": false])
            }
            if let id = error.taskId, let replyTo = delivery.properties.replyTo, error.taskName != nil {
                let type = error.reason == .unsupportedContentType ? "ContentDisallowed" : "DecodeError"
                // The message is safely in <queue>.dead already: telling the caller is best effort.
                try? await publish(
                    .failure(id, TaskFailure(type: type, message: error.message, module: "kombu.exceptions")),
                    to: replyTo)
            }
            return
        }
        var log = logger
        log[metadataKey: "task_id"] = "\(message.id)"
        log[metadataKey: "task"] = "\(message.name)"
        log.info("received\(delivery.redelivered ? " (redelivered)" : "")")
        await events?.taskReceived(message)

        if worker.state.isRevoked(message.id) {
            log.warning("revoked by remote control; not run")
            try await revoke(message, reason: "revoked")
            return
        }
        let settings = worker.configuration.tasks[message.name]
        let timeLimit: Double?
        switch message.admission(now: Date(), configuredTimeLimit: settings?.timeLimit) {
        case .expired:
            log.warning("expired at \(message.expires ?? "?"); revoked without running")
            try await revoke(message, reason: "expired")
            return
        case .wait(let wait, let step):
            log.info("eta \(message.eta ?? "?") is \(String(format: "%.1f", wait)) s away; parked for \(step) s in a delay queue")
            // The copy is the worker's own publish: it cannot carry the producer's validated user_id (406).
            var properties = delivery.properties
            properties.userId = nil
            try await DelayQueues.publish(
                OutgoingMessage(body: delivery.body, routingKey: queue, properties: properties), to: queue, after: wait,
                on: channel)
            return
        case .run(let limit):
            timeLimit = limit
        }
        guard let handler = worker.registry.handler(for: message.name) else {
            log.error("unknown task \(message.name); moved to \(DeadLetters.name(for: queue))")
            await events?.send("task-failed", [
                "uuid": .string(message.id), "exception": .string("NotRegistered('\(message.name)')"), "traceback": .null,
            ])
            try await publishResult(.failure(message.id, .notRegistered(message.name)), for: message)
            try await deadLetter(delivery, reason: "unknown-task", error: "no handler registered for \(message.name)")
            return
        }
        if worker.configuration.sendStarted {
            try await publishResult(
                ResultMessage(
                    taskId: message.id, status: .started, result: ["pid": .int(Int(getpid())), "hostname": .string(hostname)],
                    parentId: message.parentId),
                for: message, persistent: false)
        }
        message.timeLimit.hard = timeLimit
        if message.ignoreResult == nil { message.ignoreResult = settings?.ignoreResult }
        let context = TaskContext(message: message, redelivered: delivery.redelivered, hostname: hostname, queue: queue)
        await events?.send("task-started", ["uuid": .string(message.id)])
        let started = ContinuousClock.now
        let run = runTracked(handler, context, delivery: delivery, timeLimit: timeLimit)
        let outcome = await run.outcome
        let runtime = ContinuousClock.now - started
        worker.state.finished(message.id, name: message.name)
        switch outcome {
        case .failure(is CancellationError) where run.wasAbandoned && worker.state.isRevoked(message.id):
            log.warning("terminated by remote control (revoke --terminate)")
            try await revoke(message, reason: "terminated")
        case .success(let value):
            log.info("succeeded in \(runtime)")
            let seconds = Double(runtime.components.seconds) + Double(runtime.components.attoseconds) / 1e18
            await events?.send("task-succeeded", [
                "uuid": .string(message.id), "result": .string(PythonRepr.repr(value)), "runtime": .double(seconds),
            ])
            try await publishResult(.success(message.id, value, parentId: message.parentId), for: message)
            try await sendFollowUps(of: message, result: value)
        case .failure(let error as TaskRetry):
            try await retry(message, delivery: delivery, request: error, log: log)
        case .failure(is CancellationError) where run.wasAbandoned || Task.isCancelled:
            // Shutdown past the grace period: requeued, never answered.
            throw CancellationError()
        case .failure(let error):
            let failure = error as? TaskFailure ?? TaskFailure(type: String(describing: type(of: error)), message: "\(error)")
            log.error("failed: \(failure)")
            await events?.send("task-failed", [
                "uuid": .string(message.id), "exception": .string("\(failure.type)(\(PythonRepr.quote(failure.message)))"),
                "traceback": .string("amqp-worker \(hostname): \(failure)\n"),
            ])
            try await publishResult(
                .failure(message.id, failure, traceback: "amqp-worker \(hostname): \(failure)\n", parentId: message.parentId),
                for: message)
            try await sendErrbacks(of: message)
        }
    }

    /// Runs the handler as its own task, listed in `inspect active` and cancellable by `revoke --terminate`, with
    /// its hard time limit. A handler that does not stop when cancelled is left behind (see `HandlerRun`).
    private func runTracked(_ handler: any TaskHandler, _ context: TaskContext, delivery: Delivery, timeLimit: Double?)
        -> HandlerRun
    {
        let run = HandlerRun.start(timeLimit: timeLimit) { try await handler.run(context) }
        worker.state.started(
            WorkerState.ActiveTask(
                message: context.message, queue: queue, redelivered: delivery.redelivered, started: Date(),
                cancel: { run.abandon() }))
        return run
    }

    /// Records REVOKED (for an expired or revoked task) and sends `task-revoked`.
    private func revoke(_ message: TaskMessage, reason: String) async throws {
        await events?.send("task-revoked", [
            "uuid": .string(message.id), "terminated": .bool(reason == "terminated"), "signum": .null,
            "expired": .bool(reason == "expired"),
        ])
        try await publishResult(
            ResultMessage(
                taskId: message.id, status: .revoked,
                result: TaskFailure(type: "TaskRevokedError", message: reason, module: "celery.exceptions").json,
                dateDone: CeleryTime.format(Date())),
            for: message)
    }

    private func retry(_ message: TaskMessage, delivery: Delivery, request: TaskRetry, log: Logger) async throws {
        let policy = worker.configuration.retryPolicy(for: message.name)
        let maxRetries = request.maxRetries ?? policy.maxRetries
        guard message.retries < maxRetries else {
            log.error("retry requested but \(maxRetries) retries are used up: \(request.reason)")
            try await publishResult(
                .failure(message.id, request.reason, traceback: "MaxRetriesExceededError: \(request.reason)\n", parentId: message.parentId),
                for: message)
            try await sendErrbacks(of: message)
            return
        }
        let requested = request.countdown.flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
        let delay = min(requested ?? policy.delay(afterRetries: message.retries).inSeconds, Self.longestDelay)
        var next = message
        next.retries += 1
        next.parentId = message.id
        next.eta = CeleryTime.format(Date().addingTimeInterval(delay))
        let (properties, body) = next.encode()
        log.warning("retry \(next.retries)/\(maxRetries) in \(String(format: "%.1f", delay)) s: \(request.reason)")
        await events?.send("task-retried", [
            "uuid": .string(message.id),
            "exception": .string("Retry(\(request.reason.type)(\(PythonRepr.quote(request.reason.message))), \(Int(delay)))"),
            "traceback": .string("Retry in \(Int(delay))s: \(request.reason)\n"),
        ])
        try await publishResult(
            ResultMessage(
                taskId: message.id, status: .retry, result: request.reason.json,
                traceback: "Retry in \(Int(delay))s: \(request.reason)\n",
                children: [.array([.array([.string(message.id), .null]), .null])], parentId: message.parentId),
            for: message)
        try await DelayQueues.publish(
            OutgoingMessage(body: body, routingKey: queue, properties: properties), to: queue, after: delay, on: channel)
    }

    /// Publishes a result or state to the task's `reply_to`, unless it has none or asked to ignore results.
    /// Final states are persistent unless the worker's `persistentResults` is off, so a confirmed result survives a
    /// broker restart as the task message it answers would have; progress states (STARTED, RETRY) are transient.
    private func publishResult(_ result: ResultMessage, for message: TaskMessage, persistent: Bool? = nil) async throws {
        guard let replyTo = message.replyTo, !replyTo.isEmpty, message.ignoreResult != true else { return }
        let persistent = persistent ?? (result.status.isFinal && worker.configuration.persistentResults)
        try await publish(result, to: replyTo, persistent: persistent)
    }

    private func publish(_ result: ResultMessage, to replyTo: String, persistent: Bool = false) async throws {
        var outgoing = result.outgoing(replyTo: replyTo, persistent: persistent)
        let limit = worker.configuration.maxResultSize
        if outgoing.body.count > limit {
            // Never hand the broker a message it may refuse by closing the channel: say how large it was instead.
            logger.error("the result of \(result.taskId) is \(outgoing.body.count) bytes, over \(limit); sending a FAILURE instead")
            let failure = TaskFailure(
                type: "ResultTooLarge",
                message: "the result is \(outgoing.body.count) bytes; this worker sends at most \(limit) ([worker] max_result_size)",
                module: "amqp_tasks")
            outgoing = ResultMessage.failure(result.taskId, failure, parentId: result.parentId)
                .outgoing(replyTo: replyTo, persistent: persistent)
        }
        outgoing.mandatory = true
        do {
            try await channel.publish(outgoing)
        } catch let error as AMQPError where error.kind == .unroutable {
            // The caller's reply queue is gone (client stopped, queue expired): nobody can receive this result.
            logger.warning("result of \(result.taskId) not delivered: reply queue \(replyTo) does not exist")
        }
    }

    /// Callbacks (`link`) and the next task of a chain, each sent with this task's result.
    private func sendFollowUps(of message: TaskMessage, result: JSONValue) async throws {
        for callback in (message.embed.callbacks ?? []).compactMap(TaskSignature.init(json:)) {
            try await send(callback, after: message, prepending: result)
        }
        if var chain = message.embed.chain, let nextJSON = chain.popLast(), let next = TaskSignature(json: nextJSON) {
            try await send(next, after: message, prepending: result, chain: chain)
        }
    }

    /// Errbacks (`link_error`), each sent with this task's id, as Celery does for tasks it cannot call in-process.
    private func sendErrbacks(of message: TaskMessage) async throws {
        for errback in (message.embed.errbacks ?? []).compactMap(TaskSignature.init(json:)) {
            try await send(errback, after: message, prepending: .string(message.id))
        }
    }

    private func send(
        _ signature: TaskSignature, after parent: TaskMessage, prepending value: JSONValue, chain: [JSONValue]? = nil
    ) async throws {
        let options = signature.options
        var next = TaskMessage(
            id: options["task_id"]?.stringValue ?? UUID().uuidString.lowercased(), name: signature.name,
            args: signature.immutable ? signature.args : [value] + signature.args, kwargs: signature.kwargs,
            embed: TaskEmbed(chain: chain?.isEmpty == false ? chain : nil))
        next.rootId = parent.rootId ?? parent.id
        next.parentId = parent.id
        next.replyTo = options["reply_to"]?.stringValue ?? parent.replyTo
        let targetQueue = options["queue"]?.stringValue ?? queue
        let (properties, body) = next.encode()
        try await channel.publish(OutgoingMessage(body: body, routingKey: targetQueue, properties: properties, mandatory: true))
    }

    /// Copies the message to `<queue>.dead` with the reason, and returns when the broker confirmed it. The dead-letter
    /// exchange and queue are declared first (cheap, and rare), so one deleted by hand comes back instead of every
    /// later dead letter failing.
    private func deadLetter(_ delivery: Delivery, reason: String, error: String) async throws {
        let quorum = worker.configuration.topology?.queue(named: queue)?.kind == .quorum
        try await DeadLetters.declare(for: queue, quorum: quorum, on: channel)
        try await channel.publish(
            DeadLetters.message(
                for: delivery, queue: queue, reason: reason, error: String(error.prefix(4000)), worker: hostname))
    }

    /// The longest countdown or ETA wait taken as given: ten years.
    static let longestDelay: Double = 315_360_000
}

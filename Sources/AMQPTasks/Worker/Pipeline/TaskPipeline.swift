import FoundationEssentials
import Logging
import AMQP

/// The per-task path of one consumer, stage by stage:
///
/// 1. decode (`DecodeStage`): the message as a `TaskMessage`, or a dead letter with its reason;
/// 2. admit (`AdmitStage`, after the middleware's `received`): expired → REVOKED, `eta` ahead → parked,
///    no handler → dead letter;
/// 3. run (`RunStage`, after the middleware's `willRun`): the handler inside the middleware's `run`;
/// 4. record (`RecordStage`): the outcome published and confirmed; a chord member's outcome joins its chord
///    (`ChordStage`, which fires the callback after the last member); then the middleware's `recorded`;
/// 5. acknowledge (`TaskProcessor`, which also bounds how often an outcome that cannot be recorded is tried).
///
/// Events, per-task logging and revocation are middleware (`CeleryEventsMiddleware`, `TaskLogMiddleware`,
/// `RevocationMiddleware`), so a new cross-cutting feature is a new middleware, not a branch here.
struct TaskPipeline: Sendable {
    let queue: String
    let configuration: WorkerConfiguration
    let middleware: [any TaskMiddleware]
    /// The middleware implementing each hook, in order (`MiddlewareHooks`): only those are called, and without
    /// awaiting when they can (`ImmediateHooks`).
    let receivedHooks, willRunHooks, recordedHooks: [PipelineHook]
    let rejectedHooks: [any TaskMiddleware]
    let admit: AdmitStage
    let runner: RunStage
    let recorder: RecordStage
    let chords: ChordStage
    let logger: Logger

    init(
        queue: String, configuration: WorkerConfiguration, registry: TaskRegistry, state: WorkerState,
        middleware: [any TaskMiddleware], outbox: any TaskOutbox, logger: Logger
    ) {
        self.queue = queue
        self.configuration = configuration
        self.middleware = middleware
        receivedHooks = middleware.hooks(.received)
        willRunHooks = middleware.hooks(.willRun)
        recordedHooks = middleware.hooks(.recorded)
        rejectedHooks = middleware.implementing(.rejected)
        self.logger = logger
        admit = AdmitStage(registry: registry, tasks: configuration.tasks, timeLimits: state.timeLimits)
        runner = RunStage(middleware: middleware.hooks(.run), state: state)
        recorder = RecordStage(outbox: outbox, queue: queue, configuration: configuration, logger: logger)
        chords = ChordStage(outbox: outbox, queue: queue, maxStateSize: configuration.maxResultSize, logger: logger)
    }

    /// The built-in middleware of a worker, outermost first, followed by the user's.
    static func middleware(
        state: WorkerState, events: EventPublisher?, hostname: String, metrics: TaskMetricsMiddleware? = nil,
        tracing: TaskTracing = TaskTracing(nil), clusterRateLimits: ClusterRateLimits? = nil,
        user: [any TaskMiddleware]
    ) -> [any TaskMiddleware] {
        var all: [any TaskMiddleware] = [TaskLogMiddleware()]
        if let events { all.append(CeleryEventsMiddleware(events: events, hostname: hostname)) }
        // Before revocation: a task revoked while it waited for its rate limit is not run.
        all.append(RateLimitMiddleware(state: state, cluster: clusterRateLimits))
        all.append(RevocationMiddleware(state: state))
        // Innermost of the worker's own, so its runtime is the handler's (and the user middleware's around it).
        if let metrics { all.append(metrics) }
        // Its span is around the user's middleware and the handler, and is the parent of the tasks they send.
        all.append(TaskTracingMiddleware(tracing: tracing))
        return all + user
    }

    /// Takes one message through stages 1 to 4; returns once its outcome is recorded, and returns what was recorded
    /// (nil for a message that never became a task). Throws when the outcome could not be recorded (the caller
    /// requeues the task), and `CancellationError` when a stop interrupted it (requeued, never answered).
    @discardableResult
    func handle(_ received: ReceivedMessage) async throws -> TaskOutcome? {
        let message: TaskMessage
        switch DecodeStage.decode(received, maxMessageSize: configuration.maxMessageSize) {
        case .failure(let rejection):
            logger.error("rejected a message from \(queue): \(rejection)")
            try await recorder.reject(received, rejection)
            try await chords.joinRejected(received, rejection, maxMessageSize: configuration.maxMessageSize)
            for middleware in rejectedHooks.reversed() { await middleware.rejected(received, because: rejection) }
            return nil
        case .success(let decoded):
            message = decoded
        }
        var task = TaskContext(
            message: message, redelivered: received.redelivered, hostname: configuration.hostname, queue: queue,
            logger: logger)
        task.publishedAt = received.properties.timestamp
        if NativeDelayedDelivery.strippingDelayPrefix(received.routingKey) != received.routingKey {
            task.logger.info("came through the delay levels")
        }
        let verdict = try await decide(&task)
        let outcome = try await recorder.record(verdict, of: task, received: received)
        try await chords.join(outcome, of: task)
        for hook in recordedHooks.reversed() {
            if let immediate = hook.immediate, immediate.recordedAtOnce(outcome, of: task) { continue }
            await hook.middleware.recorded(outcome, of: task)
        }
        return outcome
    }

    /// Stages 2 and 3: the verdict on a decoded task.
    private func decide(_ task: inout TaskContext) async throws -> Verdict {
        if let verdict = try await hooks(
            receivedHooks, task, atOnce: { try $0.receivedAtOnce($1) }, awaited: { try await $0.received($1) })
        {
            return verdict
        }
        var admission = admit.admit(task.message)
        while case .hold(let remaining) = admission {
            // Never before its eta: a stop cancels this sleep, and the task is requeued (CancellationError).
            try await Task.sleep(for: remaining)
            admission = admit.admit(task.message)
        }
        switch admission {
        case .hold:
            preconditionFailure("held above until due")
        case .verdict(let verdict):
            return verdict
        case .run(let handler, let timeLimit):
            task.message.timeLimit.hard = timeLimit
            task.message.timeLimit.soft = task.message.softTimeLimit(
                configured: admit.timeLimits.soft(for: task.taskName, configured: configuration.tasks[task.taskName]?.softTimeLimit))
            if task.message.ignoreResult == nil { task.message.ignoreResult = configuration.tasks[task.taskName]?.ignoreResult }
            if let verdict = try await hooks(
                willRunHooks, task, atOnce: { try $0.willRunAtOnce($1) }, awaited: { try await $0.willRun($1) })
            {
                return verdict
            }
            if configuration.sendStarted { try await recorder.recordStarted(task.message) }
            task.progress = recorder.progressReporter(for: task.message)
            // Every progress state goes out before the outcome is recorded, so the caller sees them in order.
            do {
                let verdict = try await runner.run(task, handler: handler, timeLimit: timeLimit)
                await task.progress?.finish()
                return verdict
            } catch {
                await task.progress?.finish()
                throw error
            }
        }
    }

    /// Calls one hook of each middleware in `list` in order (its synchronous form `atOnce` first, when it has one;
    /// `awaited` when it has none or that answers false); the verdict of the first that throws, nil when none did.
    /// `CancellationError` while the worker is stopping is no verdict: the task is requeued. Thrown while nothing
    /// stops, it is a FAILURE like any other error, or the task would come straight back, again and again.
    private func hooks(
        _ list: [PipelineHook], _ task: TaskContext, atOnce: (any ImmediateHooks, TaskContext) throws -> Bool,
        awaited: (any TaskMiddleware, TaskContext) async throws -> Void
    ) async throws -> Verdict? {
        do {
            for hook in list {
                if let immediate = hook.immediate, try atOnce(immediate, task) { continue }
                try await awaited(hook.middleware, task)
            }
            return nil
        } catch is CancellationError where Task.isCancelled {
            throw CancellationError()
        } catch {
            return Verdict.from(error, runtime: nil)
        }
    }
}

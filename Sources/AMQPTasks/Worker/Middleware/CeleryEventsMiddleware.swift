import FoundationEssentials

/// Celery's task events (`task-received`, `task-started`, `task-succeeded`, `task-failed`, `task-retried`,
/// `task-revoked`, `task-rejected`) for Flower, `celery events` and `amqp-task events`; on with `-E` or after
/// `enable_events` (`EventToggles`), and off again after `disable_events`.
struct CeleryEventsMiddleware: HookDeclaringMiddleware {
    let hooks: MiddlewareHooks = [.received, .run, .recorded, .rejected]
    let events: EventPublisher
    let hostname: String

    func received(_ task: TaskContext) async throws {
        guard events.toggles.taskEvents else { return }
        await events.taskReceived(task.message)
    }

    /// Sent from `run`, after every middleware's `willRun`: a task one of them refuses never started.
    func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue {
        if events.toggles.taskEvents { await events.send("task-started", ["uuid": .string(task.taskId)]) }
        return try await next(task)
    }

    func recorded(_ outcome: TaskOutcome, of task: TaskContext) async {
        guard events.toggles.taskEvents else { return }
        let id = JSONValue.string(task.taskId)
        // Turned on by enable_events on a worker below remote_control "full": names, states and times, no task data.
        let hide = events.toggles.hidesTaskData
        switch outcome {
        case .succeeded(let value, let runtime):
            await events.send("task-succeeded", [
                "uuid": id, "result": .string(hide ? EventPublisher.hidden : PythonRepr.repr(value)),
                "runtime": .double(runtime.secondsValue),
            ])
        case .failed(let failure, _):
            let message = hide ? EventPublisher.hidden : PythonRepr.quote(failure.message)
            await events.send("task-failed", [
                "uuid": id, "exception": .string("\(failure.type)(\(message))"),
                "traceback": .string(hide ? EventPublisher.hidden : "amqp-worker \(hostname): \(failure)\n"),
            ])
        case .retried(let reason, let delay, _, _):
            let seconds = Int(delay.secondsValue)
            let message = hide ? EventPublisher.hidden : PythonRepr.quote(reason.message)
            await events.send("task-retried", [
                "uuid": id, "exception": .string("Retry(\(reason.type)(\(message)), \(seconds))"),
                "traceback": .string(hide ? EventPublisher.hidden : "Retry in \(seconds)s: \(reason)\n"),
            ])
        case .revoked(let reason):
            await events.send("task-revoked", [
                "uuid": id, "terminated": .bool(reason == .terminated), "signum": .null, "expired": .bool(reason == .expired),
            ])
        case .rejected(let rejection) where rejection.reason == DeadLetterReason.unknownTask:
            // Celery reports a task nobody registered as failed with NotRegistered.
            await events.send("task-failed", [
                "uuid": id, "exception": .string("NotRegistered('\(task.taskName)')"), "traceback": .null,
            ])
        case .rejected:
            await events.send("task-rejected", ["uuid": id, "requeue": false])
        case .deferred:
            break
        }
    }

    func rejected(_ message: ReceivedMessage, because rejection: TaskRejection) async {
        if let id = rejection.taskId, events.toggles.taskEvents {
            await events.send("task-rejected", ["uuid": .string(id), "requeue": false])
        }
    }
}

import FoundationEssentials

/// Answers REVOKED for a task revoked by remote control (`celery control revoke`, `amqp-task revoke`) before it
/// runs: when it arrives, and again when it is about to run. (One stopped by `revoke --terminate` while it ran is answered by `RunStage`, which alone knows that the
/// worker abandoned its handler, whatever the middleware around it did.)
struct RevocationMiddleware: ImmediateHooks {
    let hooks: MiddlewareHooks = [.received, .willRun]
    let state: WorkerState

    func received(_ task: TaskContext) async throws { _ = try receivedAtOnce(task) }

    func receivedAtOnce(_ task: TaskContext) throws -> Bool {
        if state.isRevoked(task.taskId) { throw TaskRevoked(.revoked) }
        return true
    }

    /// Again just before the handler: a task may be revoked while it waited (for its rate limit, say).
    func willRun(_ task: TaskContext) async throws { _ = try willRunAtOnce(task) }

    func willRunAtOnce(_ task: TaskContext) throws -> Bool {
        if state.isRevoked(task.taskId) { throw TaskRevoked(.revoked) }
        return true
    }
}

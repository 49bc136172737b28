import Foundation

/// Answers REVOKED for a task revoked by remote control (`celery control revoke`, `amqp-task revoke`) before it
/// runs, and for one stopped by `revoke --terminate` while it ran.
struct RevocationMiddleware: TaskMiddleware {
    let state: WorkerState

    func received(_ task: TaskContext) async throws {
        if state.isRevoked(task.taskId) { throw TaskRevoked(.revoked) }
    }

    func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue {
        do {
            return try await next(task)
        } catch is HandlerAbandoned where state.isRevoked(task.taskId) {
            throw TaskRevoked(.terminated)
        }
    }
}

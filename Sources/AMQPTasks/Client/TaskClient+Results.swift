/// Asking for the states and results of sent tasks.
extension TaskClient {
    /// Waits for the final state (SUCCESS, FAILURE or REVOKED) of a task this client sent. Throws
    /// `TaskClientError.timedOut` when none came within `timeout`, `.closed` when the client closes meanwhile.
    public func result(for taskId: String, timeout: Duration = .seconds(60)) async throws -> ResultMessage {
        try await router.final(for: taskId, timeout: timeout).final
    }

    /// Every state message of a task so far and until it is final (STARTED, RETRY, …, SUCCESS).
    public func states(for taskId: String, timeout: Duration = .seconds(60)) async throws -> [ResultMessage] {
        try await router.final(for: taskId, timeout: timeout, keep: true).history
    }

    /// The result value of a task; throws its `TaskFailure` if it failed (or was revoked), and `TaskClientError` as
    /// `result(for:timeout:)` does.
    public func value(for taskId: String, timeout: Duration = .seconds(60)) async throws -> JSONValue {
        let result = try await result(for: taskId, timeout: timeout)
        switch result.status {
        case .success: return result.result
        case .revoked: throw TaskFailure(type: "TaskRevokedError", message: "task \(taskId) was revoked", module: "celery.exceptions")
        default: throw result.failure ?? TaskFailure(type: "Exception", message: result.result.jsonString)
        }
    }
}

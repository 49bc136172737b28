import FoundationEssentials

/// What the record stage is asked to record; it answers with the `TaskOutcome` it recorded (a retry with none
/// left is recorded as a failure, say).
enum Verdict: Sendable {
    case succeeded(JSONValue, runtime: Duration)
    case failed(TaskFailure, runtime: Duration?)
    case retry(TaskRetry, runtime: Duration?)
    case revoke(TaskRevoked.Reason)
    case reject(TaskRejection)
    case park(wait: Duration)

    /// The verdict an error thrown by a middleware or a handler stands for. `CancellationError` is not a verdict:
    /// it means the worker is stopping, and the task is requeued.
    static func from(_ error: Error, runtime: Duration?) -> Verdict {
        switch error {
        case let retry as TaskRetry: .retry(retry, runtime: runtime)
        case let rejection as TaskRejection: .reject(rejection)
        case let revoked as TaskRevoked: .revoke(revoked.reason)
        case let failure as TaskFailure: .failed(failure, runtime: runtime)
        case let soft as SoftTimeLimitExceeded: .failed(soft.failure, runtime: runtime)
        default: .failed(TaskFailure(type: String(describing: type(of: error)), message: "\(error)"), runtime: runtime)
        }
    }
}

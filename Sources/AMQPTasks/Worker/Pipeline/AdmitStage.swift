import Foundation

/// Stage 2: whether a decoded task runs now, and with what. Expired tasks are revoked, tasks whose `eta` is ahead
/// are parked, tasks without a handler are rejected; the rest run with their hard time limit.
struct AdmitStage: Sendable {
    let registry: TaskRegistry
    let tasks: [String: TaskSettings]

    enum Decision {
        case run(any TaskHandler, timeLimit: Double?)
        case verdict(Verdict)
    }

    func admit(_ message: TaskMessage, now: Date = Date()) -> Decision {
        switch message.admission(now: now, configuredTimeLimit: tasks[message.name]?.timeLimit) {
        case .expired:
            return .verdict(.revoke(.expired))
        case .wait(let wait, _):
            return .verdict(.park(wait: wait))
        case .run(let timeLimit):
            guard let handler = registry.handler(for: message.name) else {
                var rejection = TaskRejection(
                    reason: DeadLetterReason.unknownTask, message: "no handler registered for \(message.name)",
                    callerFailure: .notRegistered(message.name))
                rejection.taskId = message.id
                rejection.taskName = message.name
                return .verdict(.reject(rejection))
            }
            return .run(handler, timeLimit: timeLimit)
        }
    }
}

/// What the record stage is asked to record; it answers with the `TaskOutcome` it recorded (a retry with none
/// left is recorded as a failure, say).
enum Verdict: Sendable {
    case succeeded(JSONValue, runtime: Duration)
    case failed(TaskFailure, runtime: Duration?)
    case retry(TaskRetry, runtime: Duration?)
    case revoke(TaskRevoked.Reason)
    case reject(TaskRejection)
    case park(wait: Double)

    /// The verdict an error thrown by a middleware or a handler stands for. `CancellationError` is not a verdict:
    /// it means the worker is stopping, and the task is requeued.
    static func from(_ error: Error, runtime: Duration?) -> Verdict {
        switch error {
        case let retry as TaskRetry: .retry(retry, runtime: runtime)
        case let rejection as TaskRejection: .reject(rejection)
        case let revoked as TaskRevoked: .revoke(revoked.reason)
        case let failure as TaskFailure: .failed(failure, runtime: runtime)
        default: .failed(TaskFailure(type: String(describing: type(of: error)), message: "\(error)"), runtime: runtime)
        }
    }
}

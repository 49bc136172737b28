import FoundationEssentials

/// Stage 2: whether a decoded task runs now, and with what. Expired tasks are revoked, tasks whose `eta` is ahead
/// are parked (or held, when it is at most `TaskMessage.etaHoldLimit` ahead), tasks without a handler are rejected; the rest run with their hard time limit.
struct AdmitStage: Sendable {
    let registry: TaskRegistry
    let tasks: [String: TaskSettings]
    /// Limits set at run time (`celery control time_limit`), which replace `tasks`' for the names they cover.
    let timeLimits: TaskTimeLimits

    enum Decision {
        case run(any TaskHandler, timeLimit: Duration?)
        case verdict(Verdict)
        /// Its `eta` is this close: wait, then admit it again.
        case hold(Duration)
    }

    func admit(_ message: TaskMessage, now: Date = Date()) -> Decision {
        switch message.admission(now: now, configuredTimeLimit: timeLimits.hard(for: message.name, configured: tasks[message.name]?.timeLimit)) {
        case .expired:
            return .verdict(.revoke(.expired))
        case .wait(let wait, _):
            return .verdict(.park(wait: wait))
        case .hold(let remaining):
            return .hold(remaining)
        case .run(let timeLimit):
            guard let handler = registry.handler(for: message.name) else {
                var rejection = TaskRejection(
                    reason: DeadLetterReason.unknownTask, message: "no handler registered for \(message.name)",
                    callerFailure: .notRegistered(message.name))
                rejection.taskId = message.id
                rejection.taskName = message.name
                rejection.callerMustBeTold = true
                return .verdict(.reject(rejection))
            }
            return .run(handler, timeLimit: timeLimit)
        }
    }
}

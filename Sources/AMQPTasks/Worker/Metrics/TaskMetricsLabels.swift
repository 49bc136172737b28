/// The label values of the task metrics, bounded whatever senders put in their messages.
struct TaskMetricsLabels: Sendable {
    /// The `task` label of every name the worker has no handler for.
    static let unknownTask = "unknown"

    let knownTasks: Set<String>

    /// `task` and `queue`: the task's name when it is known, else `unknown`.
    func dimensions(task: String, queue: String) -> [(String, String)] {
        [("task", knownTasks.contains(task) ? task : Self.unknownTask), ("queue", queue)]
    }

    /// The `outcome` label of `amqp_tasks_tasks_total`.
    enum Outcome: String, CaseIterable, Sendable {
        case succeeded, failed, retried, rejected, revoked
        /// A message that never became a task (it did not decode) was moved to `<queue>.dead`.
        case deadLettered = "dead_lettered"

        /// The label of a recorded outcome; nil for a task parked until its `eta` (it is counted when it runs).
        init?(_ outcome: TaskOutcome) {
            switch outcome {
            case .succeeded: self = .succeeded
            case .failed: self = .failed
            case .retried: self = .retried
            case .revoked: self = .revoked
            case .rejected: self = .rejected
            case .deferred: return nil
            }
        }
    }
}

/// How `amqp-worker` writes its log to standard error (`--log-format`, `[worker] log_format`).
public enum LogFormat: String, Sendable, Hashable, CaseIterable {
    /// swift-log's text lines: `2026-01-01T00:00:00+0000 info amqp-tasks.worker: task=… task_id=… [AMQPTasks] received`.
    case text
    /// One JSON object per line (`JSONLogHandler`), for log shippers.
    case json

    /// The spellings the configuration file and the command line accept.
    public static let spellings = allCases.map(\.rawValue).joined(separator: ", ")
}

import Logging

/// The log handler of a task's logger (`TaskContext.logger`): the worker's handler, with the task's `task_id` and
/// `task` added to every line it writes.
///
/// The task's keys are passed with each line as the call's metadata (a call's own `task_id` or `task` wins), not set
/// on the worker's handler: setting metadata on swift-log's `StreamLogHandler` formats its whole metadata at once,
/// which cost about 13,000 instructions for every task although most tasks log nothing at the worker's level
/// (README, "Instructions per task"). A line filtered out by the level costs nothing here.
struct TaskLogHandler: LogHandler {
    /// The worker's handler: level, provider and its own metadata are its.
    private var base: any LogHandler
    private var taskId: Logger.MetadataValue?
    private var taskName: Logger.MetadataValue?
    /// Keys set on the task's logger by a handler or a middleware (`logger[metadataKey:] = …`).
    private var added: Logger.Metadata = [:]

    init(base: any LogHandler, taskId: String, taskName: String) {
        self.base = base
        self.taskId = .string(taskId)
        self.taskName = .string(taskName)
    }

    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    /// The worker handler's metadata with the task's keys and those set on this logger.
    var metadata: Logger.Metadata {
        get {
            var metadata = base.metadata
            metadata.merge(taskMetadata) { _, task in task }
            return metadata
        }
        set {
            taskId = newValue["task_id"]
            taskName = newValue["task"]
            added = newValue.filter { $0.key != "task_id" && $0.key != "task" }
        }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get {
            switch key {
            case "task_id": taskId
            case "task": taskName
            default: added[key] ?? base[metadataKey: key]
            }
        }
        set {
            switch key {
            case "task_id": taskId = newValue
            case "task": taskName = newValue
            default: added[key] = newValue
            }
        }
    }

    func log(event: LogEvent) {
        var event = event
        var metadata = taskMetadata
        if let own = event.metadata { metadata.merge(own) { _, call in call } }
        event.metadata = metadata
        base.log(event: event)
    }

    /// The task's keys and those set on this logger, as a line's metadata.
    private var taskMetadata: Logger.Metadata {
        var metadata = added
        if let taskId { metadata["task_id"] = taskId }
        if let taskName { metadata["task"] = taskName }
        return metadata
    }
}

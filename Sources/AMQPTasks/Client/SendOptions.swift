import FoundationEssentials

/// How and where a task is sent: Celery's `apply_async` options.
public struct SendOptions: Sendable {
    /// The queue the task goes to, through the default exchange. Nil: the client's routes decide (by default
    /// Celery's queue `celery`).
    public var queue: String?
    /// Publish to this exchange instead, with `routingKey`.
    public var exchange: String?
    public var routingKey: String?
    /// Run no sooner than this long from now (Celery's `countdown`).
    public var countdown: Duration?
    /// Run no sooner than this time (Celery's `eta`); `countdown` wins if both are set.
    public var eta: Date?
    /// Revoke the task if it has not started this long from now; also the message's TTL. Zero or negative: the
    /// task is expired when it arrives.
    public var expiresIn: Duration?
    /// 0–255; honoured by queues declared with `x-max-priority`.
    public var priority: UInt8?
    /// True: the worker sends no result message. `result(for:)` then never returns.
    public var ignoreResult: Bool?
    public var timeLimit: TaskMessage.TimeLimit = .init()
    /// Preset task id (a fresh UUID otherwise).
    public var taskId: String?
    public var parentId: String?
    public var rootId: String?
    /// Tasks to send with this task's result when it succeeds (Celery's `link`).
    public var link: [TaskSignature] = []
    /// Tasks to send with this task's id when it fails (Celery's `link_error`).
    public var linkError: [TaskSignature] = []
    /// Extra headers (Celery's `headers={...}`), merged into the task headers.
    public var headers: [String: JSONValue] = [:]

    public init(queue: String? = nil) { self.queue = queue }
}

import FoundationEssentials

/// `[schedules."NAME"]`: a task the periodic scheduler (`amqp-worker --beat`) sends on a timetable.
public struct ScheduleSettings: Sendable, Hashable {
    /// The schedule's name (the table's key): part of each tick's task id and of its state queue's name.
    public var name: String
    /// The task to send, e.g. `reports.nightly`.
    public var task: String
    /// `every` or `cron` (with `timezone`).
    public var timing: ScheduleTiming
    public var args: [JSONValue]
    public var kwargs: [String: JSONValue]
    /// Send to this queue; nil: where `[tasks."NAME"] queue`, else `[routes]`, else `celery` sends the task.
    public var queue: String?
    /// Each tick's task expires this long after its tick (Celery's `expires`; also the message's TTL).
    public var expires: Duration?

    /// One schedule; every key of `[schedules."NAME"]` has a parameter.
    public init(
        name: String, task: String, timing: ScheduleTiming, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:],
        queue: String? = nil, expires: Duration? = nil
    ) {
        self.name = name
        self.task = task
        self.timing = timing
        self.args = args
        self.kwargs = kwargs
        self.queue = queue
        self.expires = expires
    }
}

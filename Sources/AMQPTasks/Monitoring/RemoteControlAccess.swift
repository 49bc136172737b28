/// Which remote-control commands a worker obeys (`[worker] remote_control`, `amqp-worker --remote-control`).
///
/// Anyone who may publish to the vhost can send to `celery.pidbox`: RabbitMQ does not say who sent a request, so
/// the worker cannot tell an operator from any other user of the vhost. The default, `readOnly`, therefore answers
/// only what Celery's monitoring tools read (`celery inspect ping|stats|registered|active_queues|…`, Flower's worker
/// pages) and refuses, with a `{"error": …}` reply as Celery gives, everything that changes what the worker does
/// (`revoke`, `terminate`, `shutdown`, pool and consumer changes, rate and time limits) or shows task arguments
/// (`inspect active` lists running tasks with their arguments replaced by `"<hidden>"`). It obeys
/// `enable_events`/`disable_events`, so that Flower shows the worker, with task data hidden in those events.
public enum RemoteControlAccess: String, Sendable, Hashable, CaseIterable {
    /// No `celery.pidbox` queue: the worker is invisible to `celery inspect` and ignores `celery control`.
    case off
    /// Monitoring only (the default): read-only inspect commands and the events switch are answered, the others
    /// refused.
    case readOnly = "read-only"
    /// Every command this worker implements, including `revoke` (with `terminate`) and `active` with arguments.
    case all

    /// The spellings the configuration file and the command line accept.
    public static let spellings = allCases.map(\.rawValue).joined(separator: ", ")

    /// Inspect commands that change nothing and reveal no task data: answered unless remote control is off.
    static let readOnlyMethods: Set<String> = [
        "ping", "registered", "stats", "active_queues", "scheduled", "reserved", "revoked", "conf", "active",
    ]

    /// Celery control commands that change a worker. `revoke`, `rate_limit`, `enable_events` and `disable_events`
    /// are implemented (read-only obeys the last two, hiding task data in the events it turns on); the others are
    /// answered with an error saying this worker does not support them (rather than left unanswered until the
    /// caller's timeout).
    static let controlMethods: Set<String> = [
        "revoke", "terminate", "revoke_by_stamped_headers", "shutdown", "pool_restart", "pool_grow", "pool_shrink",
        "autoscale", "add_consumer", "cancel_consumer", "rate_limit", "time_limit", "enable_events",
        "disable_events",
    ]

    /// Turn events on and off: obeyed under read-only too, so Flower (which sends `enable_events` every 5 s) shows
    /// the worker; events turned on that way carry no task data (`EventToggles.hidesTaskData`).
    static let eventMethods: Set<String> = ["enable_events", "disable_events"]

    /// True when `method` may run under this access level.
    func allows(_ method: String) -> Bool {
        switch self {
        case .off: false
        case .readOnly: Self.readOnlyMethods.contains(method) || Self.eventMethods.contains(method)
        case .all: true
        }
    }

    /// True when `inspect active` may show task arguments.
    var showsArguments: Bool { self == .all }
}

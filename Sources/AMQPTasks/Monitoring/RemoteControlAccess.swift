/// Which remote-control commands a worker obeys (`[worker] remote_control`, `amqp-worker --remote-control`).
///
/// Anyone who may publish to the vhost can send to `celery.pidbox`: RabbitMQ does not say who sent a request, so
/// the worker cannot tell an operator from any other user of the vhost. The levels, from strictest:
/// - `off`: no pidbox queue at all.
/// - `readOnly` (`"read-only"`): what Celery's monitoring tools read (`celery inspect ping|stats|registered|…`,
///   Flower's worker pages) and `enable_events`/`disable_events`; everything else is refused.
/// - `standard` (the default): `readOnly` plus `revoke` (with `terminate`) and `rate_limit`.
/// - `full` (`"full"`, or `"all"` as earlier versions spelled it): also what stops or reshapes the worker
///   (`shutdown`, `time_limit`, `pool_grow`, `pool_shrink`, `add_consumer`, `cancel_consumer`, `autoscale`; see
///   `ConsumerSlots`), and task data: `inspect active` shows arguments and events turned on by `enable_events` carry
///   arguments and results. `pool_restart` is answered "not supported" there (no pool processes to restart).
///
/// Below `full`, `inspect active` lists running tasks with their arguments replaced by `"<hidden>"`, and events turned
/// on by `enable_events` carry `"<hidden>"` in place of task data. A refused command is always answered, with a
/// `{"error": …}` reply as Celery gives for a command that fails.
public enum RemoteControlAccess: String, Sendable, Hashable, CaseIterable {
    /// No `celery.pidbox` queue: the worker is invisible to `celery inspect` and ignores `celery control`.
    case off
    /// Monitoring only: read-only inspect commands and the events switch are answered, the others refused.
    case readOnly = "read-only"
    /// The default: monitoring, `revoke`/`terminate` and `rate_limit`; what stops or reshapes the worker is refused.
    case standard
    /// Every command this worker implements, including `shutdown`, `time_limit`, the pool, consumer and autoscale
    /// commands, and `inspect active` with arguments.
    case full

    /// `full`, as versions before `standard` existed called it.
    public static var all: RemoteControlAccess { .full }

    /// Accepts each level's name, and `"all"` for `full`.
    public init?(rawValue: String) {
        switch rawValue {
        case "off": self = .off
        case "read-only": self = .readOnly
        case "standard": self = .standard
        case "full", "all": self = .full
        default: return nil
        }
    }

    /// The spellings the configuration file and the command line accept.
    public static let spellings = (allCases.map(\.rawValue) + ["all"]).joined(separator: ", ")

    /// Inspect commands that change nothing and reveal no task data: answered unless remote control is off.
    static let readOnlyMethods: Set<String> = [
        "ping", "registered", "stats", "active_queues", "scheduled", "reserved", "revoked", "conf", "active",
    ]

    /// Turn events on and off: obeyed under read-only too, so Flower (which sends `enable_events` every 5 s) shows
    /// the worker; below `full`, events turned on that way carry no task data (`EventToggles.hidesTaskData`).
    static let eventMethods: Set<String> = ["enable_events", "disable_events"]

    /// Commands that change what the worker does to tasks without stopping or reshaping it: obeyed from `standard`.
    static let standardMethods: Set<String> = ["revoke", "terminate", "revoke_by_stamped_headers", "rate_limit"]

    /// Commands that stop or reshape a worker: obeyed only under `full` (`pool_restart` is then answered "not
    /// supported", with the reason), refused with an error reply below it.
    static let fullMethods: Set<String> = [
        "shutdown", "pool_restart", "pool_grow", "pool_shrink", "autoscale", "add_consumer", "cancel_consumer",
        "time_limit",
    ]

    /// Celery control commands that change a worker. Those this worker does not implement are answered with an
    /// error saying so (rather than left unanswered until the caller's timeout).
    static let controlMethods: Set<String> = standardMethods.union(fullMethods).union(eventMethods)

    /// True when `method` may run under this access level.
    func allows(_ method: String) -> Bool {
        switch self {
        case .off: false
        case .readOnly: Self.readOnlyMethods.contains(method) || Self.eventMethods.contains(method)
        case .standard:
            Self.readOnlyMethods.contains(method) || Self.eventMethods.contains(method)
                || Self.standardMethods.contains(method)
        case .full: true
        }
    }

    /// The least access that allows `method`, named in refusals.
    static func needed(for method: String) -> RemoteControlAccess {
        standardMethods.contains(method) ? .standard : .full
    }

    /// True when `inspect active` may show task arguments and events turned on remotely may carry task data.
    var showsArguments: Bool { self == .full }
}

import Synchronization

/// Time limits per task name set at run time by `celery control time_limit NAME SOFT [HARD]`, one store per worker
/// (in `WorkerState`), so workers in one process keep their own.
///
/// A limit set here replaces `[tasks."NAME"] time_limit` and `soft_time_limit` for tasks admitted afterwards, as
/// Celery's `time_limit` replaces the task class's limits: a value left out (nil) means no limit of that kind. A
/// task whose message carries its own `timelimit` keeps it (Celery's request limits win over the task's too). Tasks
/// already running keep the limits they started with. Only registered task names are stored, so the store is
/// bounded by the registry.
final class TaskTimeLimits: Sendable {
    /// The limits one task name runs with.
    struct Limits: Sendable, Equatable {
        var soft: Duration?
        var hard: Duration?
    }

    private let overrides = Mutex<[String: Limits]>([:])

    /// Replaces the limits of `name` for tasks admitted from now on.
    func set(_ limits: Limits, for name: String) {
        overrides.withLock { $0[name] = limits }
    }

    /// The limits set at run time for `name`, or nil when none were (the configuration's apply).
    func limits(for name: String) -> Limits? {
        overrides.withLock { $0[name] }
    }

    /// The hard limit `name` runs with when its message asks for none: the one set at run time, else `configured`.
    func hard(for name: String, configured: Duration?) -> Duration? {
        limits(for: name).map(\.hard) ?? configured
    }

    /// The soft limit `name` runs with when its message asks for none: the one set at run time, else `configured`.
    func soft(for name: String, configured: Duration?) -> Duration? {
        limits(for: name).map(\.soft) ?? configured
    }
}

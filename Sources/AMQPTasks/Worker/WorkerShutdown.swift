import AMQP
import FoundationEssentials

/// How a worker's `run()` ended other than by a warm shutdown.
public enum WorkerShutdown: Error, Sendable, CustomStringConvertible {
    /// `shutdownNow()` (a second SIGTERM/SIGINT): running tasks were interrupted and requeued for another worker.
    case cold
    /// Too many handlers the worker stopped waiting for (hard time limit, `revoke --terminate`) still run, or they
    /// starved Swift's cooperative pool (`WorkerConfiguration.maxAbandonedHandlers`): the worker stopped taking
    /// tasks and stopped as in a warm shutdown. Exit with `restartExitStatus` and let a supervisor start a fresh
    /// process: only that gets the threads back.
    case restartNeeded(reason: String)

    /// The exit status of `amqp-worker` after `restartNeeded` (EX_TEMPFAIL): restart it. A worker that cannot even
    /// stop (every thread held) exits with it by itself, `gracePeriod` + 15 s after it decided to stop.
    public static let restartExitStatus: Int32 = 75

    public var description: String {
        switch self {
        case .cold: "cold shutdown: running tasks were interrupted and requeued, not finished"
        case .restartNeeded(let reason): "stopped to be restarted: \(reason)"
        }
    }
}

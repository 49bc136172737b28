import AMQP
import Foundation

/// How a worker's `run()` ended other than by a warm shutdown.
public enum WorkerShutdown: Error, Sendable, CustomStringConvertible {
    /// `shutdownNow()` (a second SIGTERM/SIGINT): running tasks were interrupted and requeued for another worker.
    case cold

    public var description: String {
        switch self {
        case .cold: "cold shutdown: running tasks were interrupted and requeued, not finished"
        }
    }
}

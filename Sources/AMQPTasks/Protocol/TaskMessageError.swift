import AMQP
import FoundationEssentials

/// Why a message could not be read as a task. `reason` is a stable code, used in dead-letter headers.
public struct TaskMessageError: Error, Sendable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case unsupportedContentType = "unsupported-content-type"
        case invalidJSON = "invalid-json"
        case invalidBody = "invalid-body"
        case notATaskMessage = "not-a-task-message"
        /// A header the worker needs is of the wrong type or out of range (`eta`, `expires`, `timelimit`,
        /// `retries`, an `id` too long to answer).
        case invalidHeader = "invalid-header"
    }

    public var reason: Reason
    public var message: String
    /// The task id, when the headers had one (so the caller can be told).
    public var taskId: String?
    public var taskName: String?

    public var description: String { "\(reason.rawValue): \(message)" }
}

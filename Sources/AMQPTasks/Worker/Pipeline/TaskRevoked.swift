import FoundationEssentials

/// Answers a task REVOKED without running it (or after stopping it). The revocation middleware throws it for a task
/// revoked by remote control; any middleware may throw it.
public struct TaskRevoked: Error, Sendable, CustomStringConvertible {
    /// Why a task was revoked: Celery's `TaskRevokedError` message.
    public enum Reason: String, Sendable, Hashable {
        /// `celery control revoke ID` (or `amqp-task revoke`).
        case revoked
        /// Its `expires` passed before it ran.
        case expired
        /// `revoke --terminate` stopped it while it ran.
        case terminated
    }

    public var reason: Reason

    public init(_ reason: Reason = .revoked) { self.reason = reason }

    public var description: String { "revoked (\(reason.rawValue))" }
}

/// A task's state, with Celery's names (`celery.states`).
public enum TaskState: String, Sendable, Hashable, Codable, CaseIterable {
    case pending = "PENDING"
    case received = "RECEIVED"
    case started = "STARTED"
    case success = "SUCCESS"
    case failure = "FAILURE"
    case retry = "RETRY"
    case revoked = "REVOKED"

    /// SUCCESS, FAILURE and REVOKED end a task; the others are followed by more.
    public var isFinal: Bool { self == .success || self == .failure || self == .revoked }
}

/// A task's state, with Celery's names (`celery.states`), or a custom one a task reports with
/// `TaskContext.updateState(_:meta:)` (Celery's `update_state(state=...)`), such as `PROGRESS`.
///
/// A struct rather than an enum so that custom states reach callers instead of being dropped: `.success`, `.failure`
/// and the other known states are its static members, and `switch` on them works as before (with a `default`).
public struct TaskState: RawRepresentable, Sendable, Hashable, Codable, ExpressibleByStringLiteral,
    CustomStringConvertible
{
    /// The state's name as on the wire (`status` of a result message).
    public let rawValue: String

    /// Any non-empty name; nil for an empty one.
    public init?(rawValue: String) {
        guard !rawValue.isEmpty else { return nil }
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        precondition(!value.isEmpty, "a task state needs a name")
        rawValue = value
    }

    public static let pending: TaskState = "PENDING"
    public static let received: TaskState = "RECEIVED"
    public static let started: TaskState = "STARTED"
    public static let success: TaskState = "SUCCESS"
    public static let failure: TaskState = "FAILURE"
    public static let retry: TaskState = "RETRY"
    public static let revoked: TaskState = "REVOKED"
    /// The custom state of progress reports (`TaskContext.reportProgress(current:total:)`); Celery has no constant
    /// for it, but `PROGRESS` is the name its documentation and most applications use.
    public static let progress: TaskState = "PROGRESS"

    /// Celery's own states (`celery.states.ALL_STATES`).
    public static let allCases: [TaskState] = [.pending, .received, .started, .success, .failure, .retry, .revoked]

    /// SUCCESS, FAILURE and REVOKED end a task; the others (custom states included) are followed by more.
    public var isFinal: Bool { self == .success || self == .failure || self == .revoked }

    /// True for a state Celery does not define (PROGRESS and other application states).
    public var isCustom: Bool { !Self.allCases.contains(self) }

    public var description: String { rawValue }
}

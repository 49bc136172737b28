import FoundationEssentials
import Synchronization
import Logging

/// Holds a task until its rate limit lets it start (`[tasks."NAME"] rate_limit`, `celery control rate_limit`):
/// its turn under this worker's limit (`TaskRateLimits`), or a token of a cluster-wide one (`ClusterRateLimits`,
/// `rate_limit_scope = "cluster"`), which the handler then sees as `RateLimitToken.current`.
///
/// With prefetch 1 the consumer that waits holds just this one task, unacknowledged: a stop during the wait
/// requeues it (the wait is cancelled), and another worker's consumers go on taking the queue's other tasks. A change
/// of the limit during the wait applies to it (`TaskRateLimits.waitForStart`). A revoke of the waiting task ends
/// the wait at once: the task is REVOKED, and the consumer takes its next task.
struct RateLimitMiddleware: ImmediateHooks {
    let hooks: MiddlewareHooks = [.willRun, .run, .recorded]
    let state: WorkerState
    let cluster: ClusterRateLimits?
    /// The tokens taken in `willRun`, until `run` hands them to the handler.
    private let tokens = HeldTokens()

    init(state: WorkerState, cluster: ClusterRateLimits? = nil) {
        self.state = state
        self.cluster = cluster
    }

    /// No limit on the task's name, cluster-wide or local, so nothing to wait for (as `willRun` would find).
    func willRunAtOnce(_ task: TaskContext) throws -> Bool {
        if let cluster, cluster.limits[task.taskName] != nil { return false }
        return state.rateLimits.limit(for: task.taskName) == nil
    }

    func willRun(_ task: TaskContext) async throws {
        let id = task.taskId
        let state = self.state
        let released: @Sendable () async -> Void = {
            await state.startWaits.wait(for: id) { state.isRevoked(id) }
        }
        if let cluster, cluster.limits[task.taskName] != nil {
            guard let token = try await cluster.takeToken(for: task.taskName, releasedBy: released) else {
                throw TaskRevoked(.revoked)
            }
            task.logger.info("took cluster rate-limit token \(token)")
            tokens.hold(token, for: id)
            return
        }
        let limits = state.rateLimits
        let started = try await limits.waitForStart(of: task.taskName, releasedBy: released) { wait in
            task.logger.debug("rate limit \(limits.limit(for: task.taskName).map(String.init(describing:)) ?? "?"): starts in \(wait)")
        }
        if !started { throw TaskRevoked(.revoked) }
    }

    /// Only a task that holds a cluster token runs inside this middleware (with the token as a task-local).
    func wrapsRun(_ task: TaskContext) -> Bool { tokens.holds(task.taskId) }

    func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue {
        guard let token = tokens.take(task.taskId) else { return try await next(task) }
        return try await RateLimitToken.$current.withValue(token) { try await next(task) }
    }

    func recorded(_ outcome: TaskOutcome, of task: TaskContext) async { _ = recordedAtOnce(outcome, of: task) }

    func recordedAtOnce(_ outcome: TaskOutcome, of task: TaskContext) -> Bool {
        _ = tokens.take(task.taskId)  // a later middleware's willRun decided the task: the token is spent anyway
        return true
    }
}

/// Tokens taken for tasks that are about to run, by task id.
private final class HeldTokens: Sendable {
    private let tokens = Mutex<[String: RateLimitToken]>([:])
    func hold(_ token: RateLimitToken, for id: String) { tokens.withLock { $0[id] = token } }
    func take(_ id: String) -> RateLimitToken? { tokens.withLock { $0.removeValue(forKey: id) } }
    func holds(_ id: String) -> Bool { tokens.withLock { $0[id] != nil } }
}

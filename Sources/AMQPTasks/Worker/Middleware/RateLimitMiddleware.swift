import Foundation

/// Holds a task until its rate limit lets it start (`[tasks."NAME"] rate_limit`, `celery control rate_limit`).
///
/// With prefetch 1 the consumer that waits holds just this one task, unacknowledged: a stop during the wait
/// requeues it (the wait is cancelled), and another worker's consumers go on taking the queue's other tasks. A change
/// of the limit during the wait applies to it (`TaskRateLimits.waitForStart`).
struct RateLimitMiddleware: TaskMiddleware {
    let limits: TaskRateLimits

    func willRun(_ task: TaskContext) async throws {
        try await limits.waitForStart(of: task.taskName) { wait in
            task.logger.debug("rate limit \(limits.limit(for: task.taskName).map(String.init(describing:)) ?? "?"): starts in \(wait)")
        }
    }
}

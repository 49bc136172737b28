import AMQP
import FoundationEssentials
import Logging

/// The worker's log line for each step of a task, with `task_id` and `task` in the metadata.
struct TaskLogMiddleware: ImmediateHooks {
    let hooks: MiddlewareHooks = [.received, .recorded]
    func received(_ task: TaskContext) async throws { _ = receivedAtOnce(task) }

    func receivedAtOnce(_ task: TaskContext) -> Bool {
        task.logger.info("received\(task.redelivered ? " (redelivered)" : "")")
        return true
    }

    func recorded(_ outcome: TaskOutcome, of task: TaskContext) async { _ = recordedAtOnce(outcome, of: task) }

    func recordedAtOnce(_ outcome: TaskOutcome, of task: TaskContext) -> Bool {
        let log = task.logger
        switch outcome {
        case .succeeded(_, let runtime): log.info("succeeded in \(runtime)")
        case .failed(let failure, _): log.error("failed: \(failure)")
        case .retried(let reason, let delay, let retries, let maxRetries):
            log.warning("retry \(retries)/\(maxRetries) in \(String(cFormat: "%.1f", delay.secondsValue)) s: \(reason)")
        case .revoked(.revoked): log.warning("revoked by remote control; not run")
        case .revoked(.expired): log.warning("expired at \(task.message.expires ?? "?"); revoked without running")
        case .revoked(.terminated): log.warning("terminated by remote control (revoke --terminate)")
        case .rejected(let rejection):
            log.error("rejected (\(rejection.reason)): \(rejection.message); moved to \(DeadLetters.name(for: task.queue))")
        case .deferred(let step):
            log.info("eta \(task.message.eta ?? "?") is ahead; parked for \(step) in a delay queue")
        }
        return true
    }
}

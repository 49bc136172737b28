import FoundationEssentials
import Synchronization

/// Stage 3: runs the handler inside the middleware, as its own task listed in `inspect active` and stoppable by
/// `revoke --terminate`, with its soft and hard time limits (`task.message.timeLimit`, fired by the worker's
/// `HandlerWatchdog`); the result or error becomes a `Verdict`.
///
/// A handler that does not stop when it is abandoned (shutdown past the grace period, terminate) is left behind
/// (see `HandlerRun`): it can no longer hold the consumer.
struct RunStage: Sendable {
    /// The middleware implementing `run`, outermost first.
    let middleware: [PipelineHook]
    let state: WorkerState
    /// This consumer's handler thread, for handlers with a hard time limit (see `HandlerThread`).
    let threads = HandlerThreads()

    /// The verdict of running `handler`; throws `CancellationError` when the worker stopped waiting for it
    /// (shutdown), so the task is requeued and never answered.
    ///
    /// Whether the worker abandoned the handler is decided here, after the middleware, whatever a middleware made
    /// of the interruption (a middleware that maps every error to a FAILURE or a retry, or answers a value of its
    /// own): an abandoned run is requeued (shutdown) or REVOKED (`revoke --terminate`), never recorded as the
    /// middleware's outcome.
    func run(_ task: TaskContext, handler: any TaskHandler, timeLimit: Duration?) async throws -> Verdict {
        let started = ContinuousClock.now
        let abandoned = Mutex(false)
        let signals = task.signals
        let progress = task.progress
        let innermost: @Sendable (TaskContext) async throws -> JSONValue = { task in
            // A middleware may hand on a context of its own making: the handler still hears this run's limits
            // and reports its progress to the caller.
            var task = task
            task.signals = signals
            task.progress = progress
            do {
                return try await runTracked(handler, task, timeLimit: timeLimit)
            } catch let error as HandlerAbandoned {
                abandoned.withLock { $0 = true }
                throw error
            }
        }
        // The first middleware wraps all the others; one that would only call `next` for this task is left out.
        let chain = middleware.reversed().reduce(innermost) { next, hook in
            if let immediate = hook.immediate, !immediate.wrapsRun(task) { return next }
            let middleware = hook.middleware
            return { task in try await middleware.run(task, next: next) }
        }
        let verdict: Verdict
        do {
            let value = try await chain(task)
            verdict = .succeeded(value, runtime: ContinuousClock.now - started)
        } catch is CancellationError where Task.isCancelled {
            throw CancellationError()
        } catch {
            verdict = Verdict.from(error, runtime: ContinuousClock.now - started)
        }
        if abandoned.withLock({ $0 }) {
            // Stopped by `revoke --terminate`: REVOKED. Stopped by a shutdown: requeued, never answered.
            guard state.isRevoked(task.taskId), !Task.isCancelled else { throw CancellationError() }
            return .revoke(.terminated)
        }
        return verdict
    }

    private func runTracked(_ handler: any TaskHandler, _ task: TaskContext, timeLimit: Duration?) async throws
        -> JSONValue
    {
        // A handler with a hard time limit may be abandoned still running, so it runs on the consumer's own thread
        // (`HandlerThread`); one without stays on the cooperative pool, which costs no thread hand-off.
        let run = HandlerRun.start(
            softLimit: task.message.timeLimit.soft, hardLimit: timeLimit, signals: task.signals,
            watchdog: state.watchdog, threads: timeLimit == nil ? nil : threads, logger: task.logger
        ) { try await handler.run(task) }
        state.started(
            WorkerState.ActiveTask(
                message: task.message, queue: task.queue, redelivered: task.redelivered, started: Date(),
                cancel: { run.abandon() }))
        defer { state.finished(task.taskId, name: task.taskName) }
        let outcome = await run.outcome
        if case .failure(is CancellationError) = outcome, run.wasAbandoned { throw HandlerAbandoned() }
        return try outcome.get()
    }
}

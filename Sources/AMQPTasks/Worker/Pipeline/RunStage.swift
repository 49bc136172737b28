import Foundation

/// Stage 3: runs the handler inside the middleware, as its own task listed in `inspect active` and stoppable by
/// `revoke --terminate`, with its hard time limit; the result or error becomes a `Verdict`.
///
/// A handler that does not stop when it is abandoned (shutdown past the grace period, terminate) is left behind
/// (see `HandlerRun`): it can no longer hold the consumer.
struct RunStage: Sendable {
    let middleware: [any TaskMiddleware]
    let state: WorkerState

    /// The verdict of running `handler`; throws `CancellationError` when the worker stopped waiting for it
    /// (shutdown), so the task is requeued and never answered.
    func run(_ task: TaskContext, handler: any TaskHandler, timeLimit: Duration?) async throws -> Verdict {
        let started = ContinuousClock.now
        let innermost: @Sendable (TaskContext) async throws -> JSONValue = { task in
            try await runTracked(handler, task, timeLimit: timeLimit)
        }
        // The first middleware wraps all the others.
        let chain = middleware.reversed().reduce(innermost) { next, middleware in
            { task in try await middleware.run(task, next: next) }
        }
        do {
            let value = try await chain(task)
            return .succeeded(value, runtime: ContinuousClock.now - started)
        } catch is HandlerAbandoned {
            throw CancellationError()
        } catch is CancellationError where Task.isCancelled {
            throw CancellationError()
        } catch {
            return Verdict.from(error, runtime: ContinuousClock.now - started)
        }
    }

    private func runTracked(_ handler: any TaskHandler, _ task: TaskContext, timeLimit: Duration?) async throws
        -> JSONValue
    {
        let run = HandlerRun.start(timeLimit: timeLimit) { try await handler.run(task) }
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

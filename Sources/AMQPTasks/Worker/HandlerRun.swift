import Foundation
import Synchronization

/// One run of a task handler that the worker can stop waiting for.
///
/// The handler runs as its own task. `outcome` returns the first of: the handler's result, the hard time limit's
/// `TimeLimitExceeded`, or `CancellationError` when `abandon()` is called or the waiting task is cancelled (warm
/// shutdown past its grace period, `revoke --terminate`). In the last two cases the handler is cancelled too, but
/// never waited for: a handler that ignores cancellation (a blocking call, a busy loop) can no longer hold its
/// consumer slot, block the hard time limit, or keep a shutting-down worker from requeueing its task and exiting.
final class HandlerRun: Sendable {
    private let state = Mutex<State>(State())

    private struct State {
        var abandoned = false
        var outcome: Result<JSONValue, Error>?
        var waiter: CheckedContinuation<Result<JSONValue, Error>, Never>?
        var handler: Task<Void, Never>?
        var timer: Task<Void, Never>?
    }

    private init() {}

    /// Starts `body` at once; with `timeLimit`, it fails with `TimeLimitExceeded` (saying the limit in seconds, as
    /// Celery's does) when the limit passes.
    static func start(timeLimit: Duration?, _ body: @escaping @Sendable () async throws -> JSONValue) -> HandlerRun {
        let run = HandlerRun()
        let handler = Task {
            let result: Result<JSONValue, Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            run.finish(result)
        }
        var timer: Task<Void, Never>?
        if let timeLimit, timeLimit > .zero {
            timer = Task {
                guard (try? await Task.sleep(for: timeLimit)) != nil else { return }
                run.finish(
                    .failure(
                        TaskFailure(type: "TimeLimitExceeded", message: "\(timeLimit.secondsValue)", module: "billiard.exceptions")))
            }
        }
        let outcome = run.state.withLock { state in
            state.handler = handler
            state.timer = timer
            return state.outcome
        }
        // It may all have ended before the tasks were stored.
        if let outcome { run.stopTasks(after: outcome, handler: handler, timer: timer) }
        return run
    }

    /// Stops waiting: `outcome` returns `CancellationError`, and the handler is asked to stop.
    func abandon() {
        state.withLock { if $0.outcome == nil { $0.abandoned = true } }
        finish(.failure(CancellationError()))
    }

    /// True when the worker stopped waiting (shutdown, terminate), as opposed to a `CancellationError` the handler
    /// threw by itself, which is a failure like any other.
    var wasAbandoned: Bool { state.withLock { $0.abandoned } }

    /// The first outcome; cancelling the caller abandons the run.
    var outcome: Result<JSONValue, Error> {
        get async {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let ready: Result<JSONValue, Error>? = state.withLock { state in
                        if let outcome = state.outcome { return outcome }
                        state.waiter = continuation
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                abandon()
            }
        }
    }

    private func finish(_ result: Result<JSONValue, Error>) {
        let taken: (CheckedContinuation<Result<JSONValue, Error>, Never>?, Task<Void, Never>?, Task<Void, Never>?)? =
            state.withLock { state in
                guard state.outcome == nil else { return nil }
                state.outcome = result
                defer { state.waiter = nil }
                return (state.waiter, state.handler, state.timer)
            }
        guard let (waiter, handler, timer) = taken else { return }
        stopTasks(after: result, handler: handler, timer: timer)
        waiter?.resume(returning: result)
    }

    private func stopTasks(after result: Result<JSONValue, Error>, handler: Task<Void, Never>?, timer: Task<Void, Never>?) {
        timer?.cancel()
        if case .failure = result { handler?.cancel() }
    }
}

import FoundationEssentials
import Logging
import Synchronization

/// One run of a task handler that the worker can stop waiting for.
///
/// The handler runs as its own (unstructured) task. `outcome` returns the first of: the handler's result, the hard
/// time limit's `TimeLimitExceeded`, or `CancellationError` when `abandon()` is called or the waiting task is
/// cancelled (warm shutdown past its grace period, `revoke --terminate`). In the last two cases the handler is
/// cancelled too, but never waited for: a handler that ignores cancellation (a blocking call, a busy loop) can no
/// longer hold its consumer slot, block the hard time limit, or keep a shutting-down worker from requeueing its
/// task and exiting. Such a handler counts as abandoned in the worker's `HandlerWatchdog` until it ends; whatever
/// it returns then is dropped, with a log line.
///
/// At the soft limit the handler is told (`HandlerSignals`) and its task cancelled: it may still return its own
/// result; a `CancellationError` it lets escape becomes `SoftTimeLimitExceeded`. The watchdog's thread fires both
/// limits, so they fire even when handlers hold every thread of the cooperative pool.
final class HandlerRun: Sendable {
    let signals: HandlerSignals
    private let softLimit: Duration?
    private let hardLimit: Duration?
    private let watchdog: HandlerWatchdog
    private let threads: HandlerThreads?
    private let thread: HandlerThread?
    private let logger: Logger
    private let state = Mutex<State>(State())

    private struct State {
        var abandoned = false
        var outcome: Result<JSONValue, Error>?
        var waiter: CheckedContinuation<Result<JSONValue, Error>, Never>?
        var handler: Task<Void, Never>?
        var handlerEnded = false
        var watchId: Int?
    }

    private init(
        softLimit: Duration?, hardLimit: Duration?, signals: HandlerSignals, watchdog: HandlerWatchdog,
        threads: HandlerThreads?, logger: Logger
    ) {
        self.threads = threads
        thread = threads?.take()
        self.softLimit = softLimit
        self.hardLimit = hardLimit
        self.signals = signals
        self.watchdog = watchdog
        self.logger = logger
    }

    /// Starts `body` at once, on a thread of `threads` (else on the cooperative pool). With `hardLimit`, it fails
    /// with `TimeLimitExceeded` (saying the limit in seconds, as Celery's does) when the limit passes; with
    /// `softLimit`, it is told and cancelled when that passes.
    static func start(
        softLimit: Duration? = nil, hardLimit: Duration?, signals: HandlerSignals = HandlerSignals(),
        watchdog: HandlerWatchdog, threads: HandlerThreads? = nil, logger: Logger,
        _ body: @escaping @Sendable () async throws -> JSONValue
    ) -> HandlerRun {
        let run = HandlerRun(
            softLimit: softLimit.flatMap { $0 > .zero ? $0 : nil }, hardLimit: hardLimit.flatMap { $0 > .zero ? $0 : nil },
            signals: signals, watchdog: watchdog, threads: threads, logger: logger)
        run.thread?.handlerStarted()
        let handler = Task(executorPreference: run.thread) {
            let result: Result<JSONValue, Error>
            do {
                result = .success(try await body())
            } catch is CancellationError where run.wasStoppedBySoftLimitOnly {
                result = .failure(SoftTimeLimitExceeded(limit: run.softLimit ?? .zero))
            } catch {
                result = .failure(error)
            }
            run.handlerEnded(with: result)
            run.thread?.handlerEnded()
        }
        // The handler is stored before its limits go live, so a limit that passes at once (a producer's tiny
        // `timelimit`) still finds it to cancel and give up.
        run.state.withLock { $0.handler = handler }
        // Without a limit there is nothing to fire: the watchdog hears of the run only if it is abandoned
        // (`decide`), which spares every plain task a lock, a clock read and a dictionary insert.
        if run.hasLimits { run.watch(abandoned: false) }
        return run
    }

    /// True when the run has a soft or a hard time limit for the watchdog to fire.
    private var hasLimits: Bool { softLimit != nil || hardLimit != nil }

    /// Registers the run with the watchdog (with its limits; `abandoned`: as abandoned at once) and stores its id.
    /// The handler may have ended, or the outcome been decided without it, before the id was stored: the watchdog
    /// is then told so here.
    private func watch(abandoned: Bool) {
        let id = watchdog.register(self, soft: abandoned ? nil : softLimit, hard: abandoned ? nil : hardLimit)
        let (ended, abandonedBeforeItsId) = state.withLock { state in
            state.watchId = id
            return (state.handlerEnded, state.outcome != nil && !state.handlerEnded)
        }
        if ended {
            watchdog.ended(id)
        } else if abandoned || abandonedBeforeItsId {
            watchdog.abandoned(id)
        }
    }

    /// Stops waiting: `outcome` returns `CancellationError`, and the handler is asked to stop.
    func abandon() {
        let first = state.withLock { state in
            guard state.outcome == nil else { return false }
            state.abandoned = true
            return true
        }
        guard first else { return }
        signals.send(.abandoned)
        decide(.failure(CancellationError()))
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

    /// The watchdog's thread: the soft limit passed. The handler is told, then cancelled.
    func softLimitPassed() {
        let handler = state.withLock { $0.outcome == nil ? $0.handler : nil }
        guard let handler, let softLimit else { return }
        logger.warning("the soft time limit (\(softLimit.secondsValue) s) passed: the handler is cancelled")
        signals.send(.softLimit)
        handler.cancel()
    }

    /// The watchdog's thread: the hard limit passed. The run fails with `TimeLimitExceeded` now, whatever the
    /// handler does.
    func hardLimitPassed() {
        guard let hardLimit, state.withLock({ $0.outcome == nil }) else { return }
        logger.error("the hard time limit (\(hardLimit.secondsValue) s) passed: the task fails with TimeLimitExceeded")
        signals.send(.hardLimit)
        decide(
            .failure(TaskFailure(type: "TimeLimitExceeded", message: "\(hardLimit.secondsValue)", module: "billiard.exceptions")))
    }

    private var wasStoppedBySoftLimitOnly: Bool {
        signals.has(.softLimit) && !signals.has(.hardLimit) && !signals.has(.abandoned)
    }

    /// The handler returned or threw: its result is the outcome, unless one was decided without it (then the
    /// result comes late and is dropped).
    private func handlerEnded(with result: Result<JSONValue, Error>) {
        typealias Waiter = CheckedContinuation<Result<JSONValue, Error>, Never>
        let (waiter, id, late) = state.withLock { state -> (Waiter?, Int?, Bool) in
            state.handlerEnded = true
            guard state.outcome == nil else { return (nil, state.watchId, true) }
            state.outcome = result
            defer { state.waiter = nil }
            return (state.waiter, state.watchId, false)
        }
        if let id { watchdog.ended(id) }
        if late {
            let what: String
            switch result {
            case .success: what = "its result"
            case .failure(let error): what = "its error (\(type(of: error)))"
            }
            logger.warning(
                "an abandoned handler (time limit, shutdown or revoke --terminate) has ended; \(what) comes too late and is dropped: the task's outcome was decided without it"
            )
        }
        waiter?.resume(returning: result)
    }

    /// An outcome decided without the handler (time limit, abandon): the handler is cancelled and, if it still
    /// runs, counted as abandoned.
    private func decide(_ result: Result<JSONValue, Error>) {
        let taken = state.withLock { state -> (CheckedContinuation<Result<JSONValue, Error>, Never>?, Task<Void, Never>?, Int?)? in
            guard state.outcome == nil else { return nil }
            state.outcome = result
            defer { state.waiter = nil }
            return (state.waiter, state.handlerEnded ? nil : state.handler, state.watchId)
        }
        guard let (waiter, handler, id) = taken else { return }
        if let handler {
            handler.cancel()
            if let id {
                watchdog.abandoned(id)
            } else if !hasLimits {
                // Never registered (no limits): it is watched from now on, as abandoned until it ends. (A run with
                // limits that has no id yet is registered by `start`, which sees the outcome and counts it then.)
                watch(abandoned: true)
            }
            if let thread { threads?.giveUp(thread) }
        }
        waiter?.resume(returning: result)
    }
}

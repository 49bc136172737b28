import Logging
import Synchronization

/// Sends a running task's custom states (PROGRESS and the like) to its caller's reply queue, best effort and
/// coalesced: at most one state is being published at a time, and of those reported meanwhile only the latest is
/// kept, so a handler that reports in a tight loop costs the broker one message per publish round trip, not one
/// per call. A state that cannot be published is logged and dropped: it never fails the task. `finish()` sends
/// the last pending state and waits for it, so the final result always comes after every progress state on the
/// wire (one channel keeps publish order).
final class ProgressReporter: Sendable {
    /// Publishes one state message (`RecordStage.recordProgress`).
    typealias Send = @Sendable (ResultMessage) async throws -> Void

    private struct State {
        var pending: ResultMessage?
        var pump: Task<Void, Never>?
        var finished = false
        var failures = 0
        /// The reply queue no longer exists: later reports are dropped unsent.
        var callerGone = false
    }

    /// Thrown by `Send` when the caller's reply queue no longer exists (the publish came back unroutable).
    struct CallerGone: Error {
        let replyQueue: String
    }

    private let state = Mutex(State())
    private let send: Send
    private let logger: Logger

    init(logger: Logger, send: @escaping Send) {
        self.logger = logger
        self.send = send
    }

    /// Queues `message` to be sent, replacing one not sent yet; ignored once the task finished.
    func report(_ message: ResultMessage) {
        state.withLock { state in
            guard !state.finished, !state.callerGone else { return }
            state.pending = message
            if state.pump == nil { state.pump = Task { await self.drain() } }
        }
    }

    /// Stops taking reports and returns once the last pending state was sent (or failed).
    func finish() async {
        let pump = state.withLock { state in
            state.finished = true
            return state.pump
        }
        await pump?.value
    }

    private func drain() async {
        while let next = takePending() {
            do {
                try await send(next)
            } catch let gone as CallerGone {
                state.withLock { state in
                    state.callerGone = true
                    state.pending = nil
                }
                logger.info("the caller's reply queue \(gone.replyQueue) no longer exists: the task's later states are not sent")
            } catch {
                let failures = state.withLock { state in
                    state.failures += 1
                    return state.failures
                }
                // The first failure and every hundredth: a task reporting into a lost connection must not flood the log.
                if failures % 100 == 1 {
                    logger.warning("could not send the task's \(next.status) state to its caller (\(failures) so far), going on without it: \(error)")
                }
            }
        }
    }

    private func takePending() -> ResultMessage? {
        state.withLock { state in
            let next = state.pending
            state.pending = nil
            if next == nil { state.pump = nil }
            return next
        }
    }
}

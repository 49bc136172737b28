import AMQP
import FoundationEssentials
import Dispatch
import Synchronization

/// A thread of its own on which one consumer runs its handlers that have a hard time limit, as a Swift
/// `TaskExecutor`: the handler's task and its child tasks run here, never on Swift's cooperative pool (2 threads on
/// 2 cores). (Handlers without a hard limit run on the pool: they are waited for, never abandoned by the limit, and
/// skip the thread hand-off each way, which costs a no-op task about as much CPU as the rest of its path.)
///
/// So a handler that blocks its thread (a CPU loop, blocking I/O) or ignores cancellation in a loop that no longer
/// suspends (`while true { try? await Task.sleep(…) }` spins once its task is cancelled) holds this thread only,
/// and the worker (its consumers, time limits, results, heartbeats) goes on. When the worker stops waiting for such
/// a handler, the consumer takes a new thread (`HandlerThreads.giveUp`) and this one ends with the handler.
final class HandlerThread: TaskExecutor, Sendable {
    private struct State {
        var jobs: [UnownedJob] = []
        var runningHandlers = 0
        var retired = false
    }

    private let state = Mutex(State())
    private let ready = DispatchSemaphore(value: 0)

    init(name: String = "amqp-tasks.handler") {
        DetachedThread.start(name: name) { [self] in loop() }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        state.withLock { $0.jobs.append(job) }
        ready.signal()
    }

    func handlerStarted() { state.withLock { $0.runningHandlers += 1 } }

    func handlerEnded() {
        state.withLock { $0.runningHandlers -= 1 }
        ready.signal()
    }

    /// No new handler will run here: the thread ends once the handlers it runs have ended.
    func retire() {
        state.withLock { $0.retired = true }
        ready.signal()
    }

    private func loop() {
        while true {
            ready.wait()
            while let job = state.withLock({ $0.jobs.isEmpty ? nil : $0.jobs.removeFirst() }) {
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
            if state.withLock({ $0.retired && $0.runningHandlers == 0 && $0.jobs.isEmpty }) { return }
        }
    }
}

/// The handler thread of one consumer: one at a time, reused from task to task, replaced when a handler is
/// abandoned still running on it. Its thread ends when the consumer's pipeline goes away.
final class HandlerThreads: Sendable {
    private let current = Mutex<HandlerThread?>(nil)

    init() {}

    /// The thread the next handler runs on.
    func take() -> HandlerThread {
        current.withLock { current in
            if let thread = current { return thread }
            let thread = HandlerThread()
            current = thread
            return thread
        }
    }

    /// The worker stopped waiting for the handler on `thread`, which still runs: the next handler gets a new
    /// thread, and this one ends when that handler does.
    func giveUp(_ thread: HandlerThread) {
        current.withLock { if $0 === thread { $0 = nil } }
        thread.retire()
    }

    deinit { current.withLock { $0 }?.retire() }
}

import CRabbitMQShim
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The operations other threads hand to a connection's I/O thread, and the eventfd that wakes the thread when it
/// sleeps in `poll`. Once the connection is closed it takes nothing more: a late operation fails at once.
final class IOOperationQueue: Sendable {
    private struct State {
        var submitted: [IOOperation] = []
        /// Why the connection closed; set once, never cleared.
        var terminalError: AMQPError?
        /// The I/O thread is in (or about to enter) `poll`: a submit must write to the eventfd.
        var sleeping = false
        /// A wake-up was written and not read yet: further submits need not write another.
        var wakePending = false
    }

    private let state = Mutex(State())
    /// Readable when work was submitted while the I/O thread slept; `poll` watches it with the socket.
    let wakeFD: Int32 = amqp_tasks_wake_fd()

    deinit { Glibc.close(wakeFD) }

    /// Queues `operation`, waking the I/O thread if it sleeps; fails it at once when the connection is closed.
    func submit(_ operation: IOOperation) {
        let outcome: (closed: AMQPError?, mustWake: Bool) = state.withLock { state in
            if let error = state.terminalError { return (error, false) }
            state.submitted.append(operation)
            let mustWake = state.sleeping && !state.wakePending
            if mustWake { state.wakePending = true }
            return (nil, mustWake)
        }
        if let error = outcome.closed {
            operation.fail(error)
        } else if outcome.mustWake {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    /// Everything submitted so far, in order, leaving the queue empty.
    func takeAll() -> [IOOperation] {
        state.withLock { state in
            let operations = state.submitted
            state.submitted.removeAll(keepingCapacity: true)
            return operations
        }
    }

    /// Marks the I/O thread as about to sleep; false (and not marked) when work is waiting, so it must not.
    func prepareToSleep() -> Bool {
        state.withLock { state in
            guard state.submitted.isEmpty else { return false }
            state.sleeping = true
            return true
        }
    }

    /// The I/O thread woke from `poll`; `wakeFDReadable` says whether the eventfd fired, which is then read.
    func wokeUp(wakeFDReadable: Bool) {
        state.withLock { state in
            state.sleeping = false
            state.wakePending = false
        }
        if wakeFDReadable {
            var value: UInt64 = 0
            _ = read(wakeFD, &value, 8)
        }
    }

    /// The error that closed the connection, or nil while it is open.
    var terminalError: AMQPError? { state.withLock { $0.terminalError } }

    /// Closes the queue with `error` (unless it was closed before, whose error stays) and returns what was waiting.
    func close(with error: AMQPError) -> (error: AMQPError, waiting: [IOOperation]) {
        state.withLock { state in
            if state.terminalError == nil { state.terminalError = error }
            let waiting = state.submitted
            state.submitted.removeAll()
            return (state.terminalError!, waiting)
        }
    }
}

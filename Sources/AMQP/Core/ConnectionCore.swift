import CRabbitMQ
import Logging

/// The single owner of one `amqp_connection_state_t`, and the I/O thread that serves it.
///
/// Why a thread of its own (the GRDB `SerializedDatabase` idea, applied to rabbitmq-c 0.11):
/// - rabbitmq-c is not thread-safe: a connection state and its sockets may be used by one thread at a time. So every
///   C call on this connection happens on this thread; other threads submit `IOOperation`s and are resumed with
///   the result.
/// - rabbitmq-c has no background thread: heartbeats are sent and checked only inside calls that wait for frames
///   (`amqp_simple_wait_frame_noblock` and the synchronous RPCs). So this thread never runs user code; it polls the
///   socket and a wake-up eventfd together and wakes at least every heartbeat/2, which keeps the connection alive
///   while handlers run for minutes elsewhere.
/// - rabbitmq-c queues frames that arrive during a synchronous RPC (`amqp_simple_rpc`) and hands them out later from
///   `amqp_simple_wait_frame_noblock`, and keeps decoded frames in per-channel pools until
///   `amqp_maybe_release_buffers`. So deliveries that arrive while a `queue.declare` waits are not lost, and the
///   loop releases buffers after each batch of frames, once their contents were copied into Swift values.
///
/// Where each part lives: the thread in `IOThread`, the hand-over in `IOOperationQueue`, the login in
/// `ConnectionCore+Login`, the loop in `ConnectionCore+Loop`, broker replies and closes in `ConnectionCore+Replies`,
/// failure fan-out in `ConnectionCore+Failure`, channels in `ConnectionCore+Channels` and `ChannelIDs`, the AMQP
/// methods in `ConnectionCore+Methods`, frames the broker sends unasked in `ConnectionCore+Frames`.
///
/// What only the I/O thread may touch is in `io`, which checks the thread on every access (debug builds).
final class ConnectionCore: Sendable {
    let configuration: ConnectionConfiguration
    let logger: Logger
    let thread = IOThread()
    let operations = IOOperationQueue()
    private let confined: IOThreadBound<ConnectionIOState>

    init(configuration: ConnectionConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        confined = IOThreadBound(ConnectionIOState(), thread: thread)
    }

    /// The state only the I/O thread touches. I/O thread only (checked).
    var io: ConnectionIOState { confined.value }

    /// rabbitmq-c's connection. I/O thread only (checked).
    var state: amqp_connection_state_t? { io.connection }

    /// The C memory for the current call. I/O thread only (checked).
    var arena: CArena { io.arena }

    // MARK: Start

    /// Starts the I/O thread, which connects and logs in, then serves the connection until it closes.
    /// Returns when the login succeeded, or throws what went wrong.
    func start() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            thread.start(
                name: "amqp-io \(configuration.host):\(configuration.port)",
                stackSize: IOThread.stackSize(frameMax: configuration.proposedFrameMax + Self.receiveHeadroom(configuration))
            ) { [self] in
                do {
                    try self.connect()
                } catch {
                    self.teardown()
                    continuation.resume(throwing: error)
                    return
                }
                continuation.resume()
                self.runLoop()
            }
        }
    }

    // MARK: Submitting work

    /// Queues `operation` for the I/O thread, or fails it at once when the connection is already closed.
    func submit(_ operation: IOOperation) {
        operations.submit(operation)
    }

    /// Runs `body` on the I/O thread and returns its result.
    func perform<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (ConnectionCore) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            submit(
                IOOperation(
                    run: { core in
                        do { continuation.resume(returning: try body(core)) } catch {
                            continuation.resume(throwing: error)
                        }
                    },
                    fail: { continuation.resume(throwing: $0.forOperation(operation)) }))
        }
    }

    /// Runs `body` on the I/O thread; `body` completes later through the callback it is given, e.g. when a
    /// publisher confirm arrives.
    func performDeferred<T: Sendable>(
        _ operation: String,
        _ body: @escaping @Sendable (ConnectionCore, @escaping @Sendable (Result<T, AMQPError>) -> Void) -> Void
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            submit(
                IOOperation(
                    run: { core in body(core) { continuation.resume(with: $0) } },
                    fail: { continuation.resume(throwing: $0.forOperation(operation)) }))
        }
    }

    /// The error that closed the connection, or nil while it is open. Any thread.
    var closedError: AMQPError? { operations.terminalError }
}

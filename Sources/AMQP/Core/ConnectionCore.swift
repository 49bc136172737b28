import CRabbitMQ
import CRabbitMQShim
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

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
/// Properties marked "I/O thread only" must not be touched elsewhere; the rest is guarded by `lock`.
final class ConnectionCore: @unchecked Sendable {
    let configuration: ConnectionConfiguration
    let logger: Logger

    // Guarded by `lock`.
    private let lock = NSLock()
    private var submitted: [IOOperation] = []
    private var terminalError: AMQPError?
    private var sleeping = false
    private var wakePending = false

    private let wakeFD: Int32

    // I/O thread only.
    var state: amqp_connection_state_t?
    let arena = CArena()
    var channels: [UInt16: ChannelState] = [:]
    var consumers: [String: ConsumerSink] = [:]
    /// Counts channel openings; see `ChannelState.generation`.
    var channelGenerations: UInt64 = 0
    private var nextChannelID: UInt16 = 1
    private var freeChannelIDs: [UInt16] = []
    private var channelMax: UInt16 = 2047
    private var isDead = false

    init(configuration: ConnectionConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        wakeFD = amqp_tasks_wake_fd()
    }

    deinit { close(wakeFD) }

    // MARK: Start

    /// Starts the I/O thread, which connects and logs in, then serves the connection until it closes.
    /// Returns when the login succeeded, or throws what went wrong.
    func start() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let thread = Thread { [self] in
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
            thread.name = "amqp-io \(configuration.host):\(configuration.port)"
            thread.stackSize = Self.ioStackSize(frameMax: configuration.frameMax)
            thread.start()
        }
    }

    /// The I/O thread's stack: rabbitmq-c decodes nested header tables and arrays recursively, so a hostile message
    /// nested as deep as a frame allows (one level per 5 bytes) must not overflow it. The stack is reserved, not
    /// touched: only the pages a deep message uses become resident.
    static func ioStackSize(frameMax: Int) -> Int {
        let levels = max(131_072, min(frameMax, 1 << 22)) / 5
        return max(8 << 20, levels * 512)
    }

    /// Opens the socket (TCP or TLS) and logs in. I/O thread only.
    private func connect() throws {
        let config = configuration
        guard let state = amqp_new_connection() else {
            throw AMQPError(.library, operation: "connect", message: "amqp_new_connection returned NULL (out of memory)")
        }
        self.state = state
        let socket: OpaquePointer?
        if let tls = config.tls {
            // OpenSSL may raise SIGPIPE on a peer that went away; a server process must not die of it.
            signal(SIGPIPE, SIG_IGN)
            socket = amqp_ssl_socket_new(state)
            guard let socket else {
                throw AMQPError(.library, operation: "connect", message: "could not create a TLS socket")
            }
            if let ca = tls.caFile {
                let status = amqp_ssl_socket_set_cacert(socket, ca)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError.libraryFailure(status, operation: "TLS setup", hint: "could not read the CA file \(ca)")
                }
            }
            if let cert = tls.certificateFile, let key = tls.keyFile {
                let status = amqp_ssl_socket_set_key(socket, cert, key)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError.libraryFailure(
                        status, operation: "TLS setup", hint: "could not read the client certificate \(cert) or key \(key)")
                }
            }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
        } else {
            socket = amqp_tcp_socket_new(state)
            guard socket != nil else {
                throw AMQPError(.library, operation: "connect", message: "could not create a TCP socket")
            }
        }
        var connectTimeout = timeval(seconds: config.connectionTimeout)
        let openStatus = amqp_socket_open_noblock(socket, config.host, Int32(config.port), &connectTimeout)
        guard openStatus == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.libraryFailure(
                openStatus, operation: "connect to \(config.host):\(config.port)",
                hint: Self.connectHint(openStatus, config))
        }
        _ = amqp_set_handshake_timeout(state, &connectTimeout)
        var properties = arena.table(clientProperties())
        let reply: amqp_rpc_reply_t
        switch config.authMechanism {
        case .plain:
            reply = amqp_tasks_login_plain(
                state, config.vhost, Int32(config.channelMax), Int32(config.frameMax), Int32(config.heartbeat),
                &properties, config.user, config.password)
        case .external:
            reply = amqp_tasks_login_external(
                state, config.vhost, Int32(config.channelMax), Int32(config.frameMax), Int32(config.heartbeat),
                &properties, config.user)
        }
        arena.reset()
        try check(reply, operation: "connection.open (login as \(config.user) to vhost \(config.vhost))", channel: 0)
        var rpcTimeout = timeval(seconds: config.operationTimeout)
        _ = amqp_set_rpc_timeout(state, &rpcTimeout)
        let negotiated = amqp_get_channel_max(state)
        if negotiated > 0 { channelMax = UInt16(clamping: negotiated) }
        logger.debug("connected", metadata: ["broker": "\(config.redactedDescription)"])
    }

    private static func connectHint(_ status: Int32, _ config: ConnectionConfiguration) -> String {
        switch status {
        case AMQP_STATUS_SOCKET_ERROR.rawValue, AMQP_STATUS_TCP_ERROR.rawValue:
            "is a broker listening on \(config.host):\(config.port)? Deploy/broker start runs a local one"
        case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED.rawValue: "check the host name \(config.host)"
        case AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue, AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue,
            AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue:
            "the TLS handshake failed: does the CA file sign the server's certificate, and does it name \(config.host)?"
        case AMQP_STATUS_TIMEOUT.rawValue: "no answer within \(config.connectionTimeout) s"
        default: "while connecting to \(config.redactedDescription)"
        }
    }

    /// Client properties sent at login: capabilities we handle, and names that show in RabbitMQ's tools.
    private func clientProperties() -> FieldTable {
        var table: FieldTable = [
            "product": "amqp-tasks",
            "platform": "Swift",
            "capabilities": .table([
                "publisher_confirms": true,
                "consumer_cancel_notify": true,
                "basic.nack": true,
                "connection.blocked": true,
                "authentication_failure_close": true,
            ]),
        ]
        if let name = configuration.connectionName { table["connection_name"] = .string(name) }
        return table
    }

    // MARK: Submitting work

    /// Queues `operation` for the I/O thread, or fails it at once when the connection is already closed.
    func submit(_ operation: IOOperation) {
        lock.lock()
        if let error = terminalError {
            lock.unlock()
            operation.fail(error)
            return
        }
        submitted.append(operation)
        let mustWake = sleeping && !wakePending
        if mustWake { wakePending = true }
        lock.unlock()
        if mustWake {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
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

    /// The error that closed the connection, or nil while it is open.
    var closedError: AMQPError? {
        lock.lock()
        defer { lock.unlock() }
        return terminalError
    }

    // MARK: The loop

    private func runLoop() {
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        var frame = amqp_frame_t()
        let pollMilliseconds = configuration.heartbeat > 0 ? Int32(configuration.heartbeat * 500) : 1000
        while !isDead {
            runSubmittedOperations()
            if isDead { break }

            var handled = 0
            while handled < 4096, !isDead {
                let status = amqp_simple_wait_frame_noblock(state, &frame, &zero)
                if status == AMQP_STATUS_TIMEOUT.rawValue { break }
                guard status == AMQP_STATUS_OK.rawValue else {
                    connectionFailed(.libraryFailure(status, operation: "read from the broker"))
                    break
                }
                handle(frame)
                handled += 1
            }
            if isDead { break }
            amqp_maybe_release_buffers(state)
            if handled > 0 { continue }

            lock.lock()
            if !submitted.isEmpty {
                lock.unlock()
                continue
            }
            sleeping = true
            lock.unlock()

            var fds = [
                pollfd(fd: amqp_get_sockfd(state), events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, 2, pollMilliseconds)

            lock.lock()
            sleeping = false
            wakePending = false
            lock.unlock()
            if fds[1].revents != 0 {
                var value: UInt64 = 0
                _ = read(wakeFD, &value, 8)
            }
            if ready == 0 { serviceHeartbeats(&frame) }
        }
        teardown()
    }

    /// After a quiet poll interval: lets rabbitmq-c send a heartbeat if one is due, and notice a broker that
    /// has been silent for two intervals (it reports `AMQP_STATUS_HEARTBEAT_TIMEOUT` only when the wait's
    /// deadline is not "immediate", hence the millisecond).
    private func serviceHeartbeats(_ frame: inout amqp_frame_t) {
        var oneMillisecond = timeval(tv_sec: 0, tv_usec: 1000)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &oneMillisecond)
        if status == AMQP_STATUS_OK.rawValue {
            handle(frame)
        } else if status != AMQP_STATUS_TIMEOUT.rawValue {
            connectionFailed(
                .libraryFailure(
                    status, operation: "heartbeat",
                    hint: status == AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue
                        ? "the broker sent nothing for two heartbeat intervals" : nil))
        }
    }

    private func runSubmittedOperations() {
        lock.lock()
        guard !submitted.isEmpty else {
            lock.unlock()
            return
        }
        let operations = submitted
        submitted.removeAll(keepingCapacity: true)
        lock.unlock()
        for (index, operation) in operations.enumerated() {
            if isDead {
                let error = closedError ?? AMQPError(.closed, operation: "connection", message: "closed")
                for rest in operations[index...] { rest.fail(error) }
                return
            }
            operation.run(self)
            arena.reset()
        }
    }

    // MARK: Failure and close

    /// The connection is lost: fails everything that waits on it, exactly once. I/O thread only.
    func connectionFailed(_ error: AMQPError) {
        guard !isDead else { return }
        isDead = true
        lock.lock()
        if terminalError == nil { terminalError = error }
        let pending = submitted
        submitted.removeAll()
        lock.unlock()
        if error.kind == .closed {
            logger.debug("connection closed", metadata: ["broker": "\(configuration.redactedDescription)"])
        } else {
            logger.error("connection lost: \(error)", metadata: ["broker": "\(configuration.redactedDescription)"])
        }
        for operation in pending { operation.fail(error) }
        for channel in channels.values { channel.fail(with: error) }
        for sink in consumers.values {
            sink.channelClosed()
            sink.finish(error.kind == .closed ? nil : error)
        }
        channels.removeAll()
        consumers.removeAll()
    }

    /// Closes the connection politely (`connection.close`) and stops the thread. I/O thread only.
    func closeConnection() {
        guard !isDead, let state else { return }
        let reply = amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
        if reply.reply_type != AMQP_RESPONSE_NORMAL {
            logger.debug("connection.close did not complete cleanly")
        }
        connectionFailed(AMQPError(.closed, operation: "connection", message: "the connection was closed by the application"))
    }

    private func teardown() {
        if let state {
            amqp_destroy_connection(state)
            self.state = nil
        }
        lock.lock()
        if terminalError == nil {
            terminalError = AMQPError(.closed, operation: "connection", message: "the connection is closed")
        }
        let pending = submitted
        submitted.removeAll()
        let error = terminalError!
        lock.unlock()
        for operation in pending { operation.fail(error) }
    }

    // MARK: Channels

    /// A free channel number. I/O thread only.
    func allocateChannelID() throws -> UInt16 {
        if let id = freeChannelIDs.popLast() { return id }
        guard nextChannelID <= channelMax else {
            throw AMQPError(
                .invalidArgument, operation: "channel.open",
                message: "all \(channelMax) channels of this connection are open",
                hint: "close channels you no longer use")
        }
        defer { nextChannelID += 1 }
        return nextChannelID
    }

    /// Forgets a closed channel and lets its number be used again. I/O thread only.
    /// Forgets a closed channel. Its consumers' sequences end normally when the application closed it, and throw
    /// `error` when the broker did, so a consumer never silently stops.
    func releaseChannel(_ id: UInt16, error: AMQPError? = nil) {
        if let channel = channels.removeValue(forKey: id) {
            for tag in channel.consumerTags {
                guard let sink = consumers.removeValue(forKey: tag) else { continue }
                sink.channelClosed()
                sink.finish(error)
            }
        }
        freeChannelIDs.append(id)
    }

    /// Checks an RPC reply; a server exception closes the channel or the connection as AMQP says. I/O thread only.
    func check(_ reply: amqp_rpc_reply_t, operation: String, channel: UInt16) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case MethodID.channelClose:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                throw serverClosedChannel(channel, close, operation: operation)
            case MethodID.connectionClose:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                throw serverClosedConnection(close, operation: operation)
            default:
                let error = AMQPError(
                    .library, operation: operation, message: "unexpected server method \(reply.reply.id)")
                connectionFailed(error)
                throw error
            }
        default:
            let status = reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                ? reply.library_error : AMQP_STATUS_UNEXPECTED_STATE.rawValue
            let error = AMQPError.libraryFailure(
                status, operation: operation,
                hint: status == AMQP_STATUS_TIMEOUT.rawValue
                    ? "the broker did not answer within \(configuration.operationTimeout) s" : nil)
            connectionFailed(error)
            throw error
        }
    }

    /// The broker closed a channel: acknowledge with `channel.close-ok`, fail what waits on the channel.
    @discardableResult
    func serverClosedChannel(_ id: UInt16, _ close: amqp_channel_close_t, operation: String?) -> AMQPError {
        var ok = amqp_channel_close_ok_t()
        _ = amqp_send_method(state, id, MethodID.channelCloseOk, &ok)
        let method = AMQPMethod(classID: close.class_id, methodID: close.method_id)
        let error = AMQPError(
            .channelClosedByServer, operation: method.name ?? operation ?? "channel \(id)",
            message: CDecode.string(close.reply_text), replyCode: ReplyCode(rawValue: close.reply_code),
            failedMethod: method, hint: Self.hint(for: ReplyCode(rawValue: close.reply_code)))
        logger.debug("channel \(id) closed by the broker: \(error)")
        channels[id]?.fail(with: error)
        releaseChannel(id, error: error)
        return error
    }

    /// The broker closed the connection: acknowledge with `connection.close-ok`, fail everything.
    @discardableResult
    func serverClosedConnection(_ close: amqp_connection_close_t, operation: String?) -> AMQPError {
        var ok = amqp_connection_close_ok_t()
        _ = amqp_send_method(state, 0, MethodID.connectionCloseOk, &ok)
        let method = AMQPMethod(classID: close.class_id, methodID: close.method_id)
        let error = AMQPError(
            .connectionClosedByServer, operation: method.name ?? operation ?? "connection",
            message: CDecode.string(close.reply_text), replyCode: ReplyCode(rawValue: close.reply_code),
            failedMethod: method, hint: Self.hint(for: ReplyCode(rawValue: close.reply_code)))
        connectionFailed(error)
        return error
    }

    private static func hint(for code: ReplyCode) -> String? {
        switch code {
        case .notFound: "declare it first, or check its name and vhost"
        case .preconditionFailed:
            "it exists with other properties or arguments; declare it exactly as it is, or delete it first"
        case .accessRefused: "the user lacks the permission for this; see rabbitmqctl list_permissions"
        case .notAllowed: "the user may not use this vhost; see rabbitmqctl set_permissions -p VHOST"
        case .connectionForced: "an operator or the broker's shutdown closed the connection; reconnect"
        case .resourceLocked: "an exclusive queue of another connection"
        default: nil
        }
    }
}

/// Work for the I/O thread: `run` there, or `fail` if the connection closed before it could run.
struct IOOperation: Sendable {
    let run: @Sendable (ConnectionCore) -> Void
    let fail: @Sendable (AMQPError) -> Void
}

extension AMQPError {
    /// The same error, naming the operation that was waiting when the connection closed.
    func forOperation(_ operation: String) -> AMQPError {
        guard kind == .closed || kind == .library || kind == .connectionClosedByServer else { return self }
        let message = self.operation == operation ? message : "\(self.operation): \(message)"
        return with(operation: operation, message: message)
    }
}

extension timeval {
    init(seconds: Double) {
        let whole = seconds.rounded(.down)
        self.init(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
    }
}

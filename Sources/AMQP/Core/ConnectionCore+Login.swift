import CRabbitMQ
import CRabbitMQShim
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Opening the socket (TCP or TLS) and logging in.
extension ConnectionCore {
    /// Opens the socket and logs in. I/O thread only (checked).
    func connect() throws {
        thread.assertCurrent("connect")
        let config = configuration
        let heartbeat = try config.checkedHeartbeat()
        guard let state = amqp_new_connection() else {
            throw AMQPError(.library, operation: "connect", message: "amqp_new_connection returned NULL (out of memory)")
        }
        io.connection = state
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
        var connectTimeout = timeval(seconds: config.connectionTimeout.secondsAsDouble)
        let openStatus = amqp_socket_open_noblock(socket, config.host, Int32(config.port), &connectTimeout)
        guard openStatus == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.libraryFailure(
                openStatus, operation: "connect to \(config.host):\(config.port)",
                hint: ErrorHints.forConnect(openStatus, config))
        }
        _ = amqp_set_handshake_timeout(state, &connectTimeout)
        var properties = arena.table(clientProperties())
        let reply: amqp_rpc_reply_t
        switch config.authMechanism {
        case .plain:
            reply = amqp_tasks_login_plain(
                state, config.vhost, Int32(config.channelMax), Int32(config.proposedFrameMax), heartbeat,
                &properties, config.user, config.password)
        case .external:
            reply = amqp_tasks_login_external(
                state, config.vhost, Int32(config.channelMax), Int32(config.proposedFrameMax), heartbeat,
                &properties, config.user)
        }
        arena.reset()
        try check(reply, operation: "connection.open (login as \(config.user) to vhost \(config.vhost))", channel: 0)
        var rpcTimeout = timeval(seconds: config.operationTimeout.secondsAsDouble)
        _ = amqp_set_rpc_timeout(state, &rpcTimeout)
        let negotiated = amqp_get_channel_max(state)
        if negotiated > 0 { io.channelIDs.negotiated(negotiated) }
        io.frameMax = Int(amqp_get_frame_max(state))
        warnIfFrameMaxOverridden(negotiated: io.frameMax)
        if config.consumes { try acceptFramesLargerThanNegotiated() }
        logger.debug("connected", metadata: ["broker": "\(config.redactedDescription)"])
    }

    /// A consuming connection proposes at least `defaultFrameMax` (see `ConnectionConfiguration.consumes`); says so
    /// when that overrides the `frame_max` the user chose, naming both values.
    private func warnIfFrameMaxOverridden(negotiated: Int) {
        let config = configuration
        guard config.consumes, negotiated > config.frameMax else { return }
        logger.warning(
            "frame_max=\(config.frameMax) is not used by this consuming connection to \(config.redactedDescription): it uses the broker's frame_max, \(negotiated) bytes, as a consumer must accept every message the broker delivers (AMQP never splits a message's properties and headers, and a publisher at the broker's frame_max may send them up to that size); remove frame_max from this URL, or keep it only for connections that publish"
        )
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
}

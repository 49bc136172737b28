import CRabbitMQ

/// What to tell the user to do about a failure, by its reply code or rabbitmq-c status.
enum ErrorHints {
    /// For a broker's `channel.close` / `connection.close` with `code` and its reply text.
    static func forReply(_ code: ReplyCode, text: String = "") -> String? {
        // RabbitMQ's consumer_timeout closes the channel with a 406 that has nothing to do with a declaration.
        if code == .preconditionFailed, text.contains("delivery acknowledgement") {
            return "a delivery stayed unacknowledged longer than the broker's consumer_timeout; raise it above the "
                + "longest task, or see the README's \"Long tasks and the broker's consumer timeout\""
        }
        return switch code {
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

    /// For a failure to open the socket to the broker `configuration` names.
    static func forConnect(_ status: Int32, _ configuration: ConnectionConfiguration) -> String {
        switch status {
        case AMQP_STATUS_SOCKET_ERROR.rawValue, AMQP_STATUS_TCP_ERROR.rawValue:
            "is a broker listening on \(configuration.host):\(configuration.port)? Deploy/broker start runs a local one"
        case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED.rawValue: "check the host name \(configuration.host)"
        case AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue, AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue,
            AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue:
            "the TLS handshake failed: does the CA file sign the server's certificate, and does it name \(configuration.host)?"
        case AMQP_STATUS_TIMEOUT.rawValue: "no answer within \(configuration.connectionTimeout)"
        default: "while connecting to \(configuration.redactedDescription)"
        }
    }
}

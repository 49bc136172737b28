import CRabbitMQ
import Logging

/// How the end of a connection reaches everything that waits on it: submitted operations, publishes waiting for
/// confirms, consumers. Each learns it exactly once, with the error that ended the connection.
extension ConnectionCore {
    /// The connection is lost: fails everything that waits on it, exactly once. I/O thread only (checked).
    func connectionFailed(_ error: AMQPError) {
        let io = io
        guard !io.isDead else { return }
        io.isDead = true
        let (_, pending) = operations.close(with: error)
        if error.kind == .closed {
            logger.debug("connection closed", metadata: ["broker": "\(configuration.redactedDescription)"])
        } else {
            logger.error("connection lost: \(error)", metadata: ["broker": "\(configuration.redactedDescription)"])
        }
        for operation in pending { operation.fail(error) }
        for channel in io.channels.values {
            channel.open.close()
            channel.fail(with: error)
        }
        for sink in io.consumers.values {
            sink.channelClosed()
            sink.finish(error.kind == .closed ? nil : error)
        }
        io.channels.removeAll()
        io.consumers.removeAll()
    }

    /// Closes the connection politely (`connection.close`) and stops the thread. I/O thread only (checked).
    func closeConnection() {
        guard !io.isDead, let state else { return }
        let reply = amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
        if reply.reply_type != AMQP_RESPONSE_NORMAL {
            logger.debug("connection.close did not complete cleanly")
        }
        connectionFailed(AMQPError(.closed, operation: "connection", message: "the connection was closed by the application"))
    }

    /// Frees rabbitmq-c's connection and fails what was submitted since. The thread's last act. I/O thread only
    /// (checked).
    func teardown() {
        if let state = io.connection {
            amqp_destroy_connection(state)
            io.connection = nil
        }
        let (error, pending) = operations.close(
            with: AMQPError(.closed, operation: "connection", message: "the connection is closed"))
        for operation in pending { operation.fail(error) }
    }
}

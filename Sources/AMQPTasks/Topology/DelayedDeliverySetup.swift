import AMQP
import FoundationEssentials
import Logging

/// What a worker declares so the queues it consumes receive delayed tasks: the delay levels
/// (`NativeDelayedDelivery.declare`), each queue's `DelayedDeliveryBindings`, and its binding to the due exchange
/// of earlier builds (`DelayQueues`), so tasks still waiting in old delay queues arrive too.
public enum DelayedDeliverySetup {
    /// Declares the levels and binds `queues` (described by `configuration` where it names them).
    public static func prepare(
        queues: [String], configuration: TasksConfiguration?, on connection: Connection, logger: Logger? = nil
    ) async throws {
        try await NativeDelayedDelivery.declare(on: connection, logger: logger)
        let channel = try await connection.openChannel()
        for queue in queues {
            let bindings = DelayedDeliveryBindings(queue: queue, configuration: configuration)
            for binding in bindings.skipped {
                logger?.warning(
                    "\(queue) is bound to \(binding.exchange) with \"\(binding.routingKey)\", which matches every key: delayed tasks reach it only through its own name (Celery's binding for it would bring every delayed task of the vhost here)"
                )
            }
            try await bind(queue, configuration: configuration, on: channel)
        }
        try? await channel.close()
    }

    /// Binds one queue (the levels must exist): after its consumer declared it again, for instance.
    public static func bind(_ queue: String, configuration: TasksConfiguration?, on channel: Channel) async throws {
        try await DelayedDeliveryBindings(queue: queue, configuration: configuration).declare(on: channel)
        try await DelayQueues.bindTarget(queue, on: channel)
    }
}

import AMQP

/// How `add_consumer` declares a queue when the request names its exchange, as Celery's worker does
/// (`Consumer.add_task_queue`): a durable exchange of the given type (direct by default), the queue (durable, not
/// auto-delete unless the options say so) and a binding with the routing key (the queue's name by default). The
/// default exchange (`""`) is not declared or bound: every queue is reachable through it by its name.
struct QueueDeclaration: Sendable, Equatable {
    /// The exchange types a worker declares: any other would make the broker close the whole connection (503).
    static let exchangeTypes: Set<String> = ["direct", "topic", "fanout", "headers"]

    var queue: String
    var exchange: String
    var exchangeType: String = "direct"
    var routingKey: String
    var queueDurable = true
    var queueAutoDelete = false
    var exchangeDurable = true
    var exchangeAutoDelete = false
    var queueArguments: FieldTable = [:]

    /// Declares the exchange, the queue and the binding; throws the broker's refusal (404, 403, 406) as it comes.
    func declare(on connection: Connection) async throws {
        let channel = try await connection.openChannel()
        do {
            if !exchange.isEmpty {
                try await channel.declareExchange(
                    exchange, type: ExchangeType(rawValue: exchangeType), durable: exchangeDurable,
                    autoDelete: exchangeAutoDelete)
            }
            try await channel.declareQueue(
                queue, durable: queueDurable, autoDelete: queueAutoDelete, arguments: queueArguments)
            if !exchange.isEmpty {
                try await channel.bindQueue(queue, to: exchange, routingKey: routingKey)
            }
        } catch {
            try? await channel.close()
            throw error
        }
        try? await channel.close()
    }
}

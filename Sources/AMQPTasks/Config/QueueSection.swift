import FoundationEssentials

/// Reads one `[[queues]]` table, with its bindings, into a `QueueDefinition`.
enum QueueSection {
    static func read(_ r: TableReader) -> QueueDefinition? {
        r.allowOnly([
            "name", "durable", "type", "dead_letter_exchange", "max_priority", "delivery_limit", "message_ttl",
            "arguments", "bindings", "consumer_timeout",
        ])
        guard let name = r.required("name") else { return nil }
        let deadSuffix = DeadLetters.name(for: "")
        r.checkShortString(
            "name", name, maxBytes: DeadLetters.longestQueueName,
            because: " (AMQP names hold 255, and the worker also declares \"<name>\(deadSuffix)\")")
        var queue = QueueDefinition(name: name)
        queue.durable = r.bool("durable") ?? true
        if let type = r.string("type") {
            if let kind = QueueDefinition.Kind(rawValue: type) {
                queue.kind = kind
            } else {
                r.context.error(r.key("type"), "expected \"classic\" or \"quorum\", got \"\(type)\"")
            }
        }
        queue.deadLetterExchange = r.string("dead_letter_exchange")
        if let priority = r.int("max_priority") {
            if (1...255).contains(priority) {
                queue.maxPriority = priority
            } else {
                r.context.error(r.key("max_priority"), "expected 1 to 255 (RabbitMQ recommends at most 10), got \(priority)")
            }
        }
        queue.deliveryLimit = r.positive("delivery_limit", r.int("delivery_limit").map(Double.init)).map { Int($0) }
        queue.messageTTL = r.nonNegativeInt("message_ttl")
        if let timeout = r.consumerTimeout("consumer_timeout") {
            if let duration = timeout.duration {
                queue.consumerTimeout = duration
            } else {
                r.context.error(r.key("consumer_timeout"), "expected a duration such as \"2h\" (a queue's timeout cannot be off)")
            }
        }
        if queue.kind == .quorum, queue.maxPriority != nil {
            r.context.error(
                r.key("max_priority"),
                "needs type = \"classic\": RabbitMQ refuses x-max-priority on quorum queues (406); drop max_priority or make the queue classic")
        }
        queue.arguments = r.arguments("arguments")
        for binding in r.tables("bindings") {
            binding.allowOnly(["exchange", "routing_key"])
            guard let exchange = binding.required("exchange") else { continue }
            let routingKey = binding.string("routing_key") ?? ""
            binding.checkShortString("exchange", exchange)
            binding.checkShortString("routing_key", routingKey)
            queue.bindings.append(.init(exchange: exchange, routingKey: routingKey))
        }
        return queue
    }
}

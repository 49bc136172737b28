import FoundationEssentials

/// Checks that names refer to things the file declares.
struct ConfigValidator {
    let context: ConfigContext
    let config: TasksConfiguration

    private static let builtInExchanges: Set<String> = [
        "", "amq.direct", "amq.topic", "amq.fanout", "amq.headers", "amq.match",
    ]

    func validate() {
        let exchanges = Set(config.exchanges.map(\.name)).union(Self.builtInExchanges)
        let queues = Set(config.queues.map(\.name))
        duplicates(config.exchanges.map(\.name), "exchanges", "exchange")
        duplicates(config.queues.map(\.name), "queues", "queue")
        for (index, queue) in config.queues.enumerated() {
            let path = "queues[\(index)]"
            if queue.kind == .quorum, !queue.durable {
                context.error("\(path).durable", "quorum queues are always durable; remove durable = false")
            }
            if queue.deliveryLimit != nil, queue.kind != .quorum {
                context.error("\(path).delivery_limit", "delivery_limit needs type = \"quorum\"")
            }
            if let dlx = queue.deadLetterExchange, !exchanges.contains(dlx) {
                context.error("\(path).dead_letter_exchange", "exchange \"\(dlx)\" is not declared in [[exchanges]]")
            }
            for (b, binding) in queue.bindings.enumerated() where !exchanges.contains(binding.exchange) || binding.exchange.isEmpty {
                context.error(
                    "\(path).bindings[\(b)].exchange",
                    binding.exchange.isEmpty
                        ? "the default exchange \"\" cannot be bound to"
                        : "queue \(queue.name) is bound to exchange \"\(binding.exchange)\", which is not declared in [[exchanges]]")
            }
        }
        for route in config.routes {
            let path = "routes.\(SourceLocator.component(route.pattern))"
            switch route.target {
            case .queue(let queue) where !queues.contains(queue):
                context.error("\(path).queue", "route to queue \"\(queue)\", which is not declared in [[queues]]")
            case .exchange(let exchange, _) where !exchanges.contains(exchange):
                context.error("\(path).exchange", "route to exchange \"\(exchange)\", which is not declared in [[exchanges]]")
            default: break
            }
        }
        for (index, queue) in (context.workerQueuesInFile ?? []).enumerated() where !queues.contains(queue) {
            context.error("worker.queues[\(index)]", "queue \"\(queue)\" is not declared in [[queues]]")
        }
        for (name, task) in config.tasks {
            if let queue = task.queue, !queues.contains(queue) {
                context.error(
                    "tasks.\(SourceLocator.component(name)).queue", "queue \"\(queue)\" is not declared in [[queues]]")
            }
        }
        for (name, schedule) in config.schedules {
            if let queue = schedule.queue, !queues.contains(queue) {
                context.error(
                    "schedules.\(SourceLocator.component(name)).queue", "queue \"\(queue)\" is not declared in [[queues]]")
            }
        }
    }

    private func duplicates(_ names: [String], _ section: String, _ what: String) {
        var seen: Set<String> = []
        for (index, name) in names.enumerated() where !seen.insert(name).inserted {
            context.error("\(section)[\(index)].name", "\(what) \"\(name)\" is declared twice")
        }
    }
}

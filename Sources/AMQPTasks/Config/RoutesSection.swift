import FoundationEssentials

/// Reads `[routes]` into `Route`s, in file order (the first pattern that matches wins).
enum RoutesSection {
    static func read(_ r: TableReader) -> [Route] {
        let context = r.context
        var routes: [Route] = []
        for pattern in r.table.keys {
            guard let target = r.subtable(pattern) else { continue }
            target.allowOnly(["exchange", "routing_key", "queue"])
            let queue = target.string("queue")
            let exchange = target.string("exchange")
            let routingKey = target.string("routing_key")
            for (name, value) in [("queue", queue), ("exchange", exchange), ("routing_key", routingKey)] {
                if let value { target.checkShortString(name, value) }
            }
            switch (queue, exchange) {
            case (let queue?, nil):
                if routingKey != nil {
                    context.error(target.key("routing_key"), "a route to a queue takes no routing_key")
                }
                routes.append(Route(pattern: pattern, target: .queue(queue)))
            case (nil, let exchange?):
                routes.append(Route(pattern: pattern, target: .exchange(exchange, routingKey: routingKey ?? pattern)))
            case (.some, .some):
                context.error(target.path, "give either queue or exchange (with routing_key), not both")
            case (nil, nil):
                context.error(target.path, "give queue = \"NAME\", or exchange = \"NAME\" with routing_key")
            }
        }
        let locator = context.locator
        return routes.sorted {
            locator.position(of: "routes.\(SourceLocator.component($0.pattern))")
                < locator.position(of: "routes.\(SourceLocator.component($1.pattern))")
        }
    }
}

/// Where a route sends tasks.
public enum RouteTarget: Sendable, Hashable {
    /// Through the default exchange to this queue.
    case queue(String)
    case exchange(String, routingKey: String)

    /// The exchange and routing key to publish to.
    public var exchangeAndRoutingKey: (exchange: String, routingKey: String) {
        switch self {
        case .queue(let queue): ("", queue)
        case .exchange(let exchange, let routingKey): (exchange, routingKey)
        }
    }
}

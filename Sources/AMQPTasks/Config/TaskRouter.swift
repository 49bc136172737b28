/// Decides where a task goes by its name: `[tasks."NAME"] queue`, else the first matching `[routes]` pattern,
/// else the default queue `celery` (Celery's default).
public struct TaskRouter: Sendable {
    public var routes: [Route]
    public var taskQueues: [String: String]
    public var defaultTarget: RouteTarget
    /// The queues and exchanges of the configuration, so a delayed task's destination queues can be bound to
    /// `celery_delayed_delivery` before it is sent (`DelayedDeliveryBindings`).
    public var queues: [QueueDefinition] = []
    public var exchanges: [ExchangeDefinition] = []

    public init(routes: [Route] = [], taskQueues: [String: String] = [:], defaultTarget: RouteTarget = .queue("celery")) {
        self.routes = routes
        self.taskQueues = taskQueues
        self.defaultTarget = defaultTarget
    }

    public init(configuration: TasksConfiguration) {
        self.init(
            routes: configuration.routes,
            taskQueues: configuration.tasks.compactMapValues(\.queue))
        queues = configuration.queues
        exchanges = configuration.exchanges
    }

    public func target(for taskName: String) -> RouteTarget {
        if let queue = taskQueues[taskName] { return .queue(queue) }
        return routes.first { $0.matches(taskName) }?.target ?? defaultTarget
    }
}

/// Decides where a task goes by its name: `[tasks."NAME"] queue`, else the first matching `[routes]` pattern,
/// else the default queue `celery` (Celery's default).
public struct TaskRouter: Sendable {
    public var routes: [Route]
    public var taskQueues: [String: String]
    public var defaultTarget: RouteTarget

    public init(routes: [Route] = [], taskQueues: [String: String] = [:], defaultTarget: RouteTarget = .queue("celery")) {
        self.routes = routes
        self.taskQueues = taskQueues
        self.defaultTarget = defaultTarget
    }

    public init(configuration: TasksConfiguration) {
        self.init(
            routes: configuration.routes,
            taskQueues: configuration.tasks.compactMapValues(\.queue))
    }

    public func target(for taskName: String) -> RouteTarget {
        if let queue = taskQueues[taskName] { return .queue(queue) }
        return routes.first { $0.matches(taskName) }?.target ?? defaultTarget
    }
}

import AMQP
import FoundationEssentials

/// Everything `amqp-tasks.toml` says: broker, topology, routing, worker and per-task settings.
///
/// Read it with `TasksConfiguration.load(path:)`; every problem is reported with file, line and key. The client,
/// `amqp-worker` and `amqp-task` all read the same file. Everything the file can set, Swift can set: build one with
/// `init(broker:exchanges:queues:routes:worker:tasks:schedules:)`.
public struct TasksConfiguration: Sendable, Equatable {
    /// The file this came from (empty for the built-in defaults).
    public var file: String = ""
    /// `[broker]`.
    public var broker = BrokerSettings()
    /// `[[exchanges]]`.
    public var exchanges: [ExchangeDefinition] = []
    /// `[[queues]]`.
    public var queues: [QueueDefinition] = []
    /// `[routes]`, in file order; the first pattern that matches a task name wins.
    public var routes: [Route] = []
    /// `[worker]`: the worker's settings (its broker, tasks and topology come from the other sections; see
    /// `WorkerConfiguration.init(configuration:)`).
    public var worker = WorkerConfiguration()
    /// `[tasks."NAME"]`, by task name.
    public var tasks: [String: TaskSettings] = [:]
    /// `[schedules."NAME"]`, by schedule name: what `amqp-worker --beat` sends periodically.
    public var schedules: [String: ScheduleSettings] = [:]

    public init(
        broker: BrokerSettings = BrokerSettings(), exchanges: [ExchangeDefinition] = [], queues: [QueueDefinition] = [],
        routes: [Route] = [], worker: WorkerConfiguration = WorkerConfiguration(), tasks: [String: TaskSettings] = [:],
        schedules: [String: ScheduleSettings] = [:]
    ) {
        self.broker = broker
        self.exchanges = exchanges
        self.queues = queues
        self.routes = routes
        self.worker = worker
        self.tasks = tasks
        self.schedules = schedules
    }

    /// The queue definition named `name`, if the file declares it.
    public func queue(named name: String) -> QueueDefinition? { queues.first { $0.name == name } }
}

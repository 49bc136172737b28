import FoundationEssentials

/// Turns the TOML tree into `TasksConfiguration`, one section reader per section, reporting type errors and unknown
/// keys in `context`.
struct ConfigLoader {
    let context: ConfigContext

    func read(_ root: TOMLTable) -> TasksConfiguration {
        let top = TableReader(table: root, path: "", context: context)
        top.allowOnly(["broker", "exchanges", "queues", "routes", "worker", "tasks", "schedules"])
        var config = TasksConfiguration()
        if let broker = top.subtable("broker") { config.broker = BrokerSection.read(broker) }
        config.exchanges = top.tables("exchanges").compactMap(ExchangeSection.read)
        config.queues = top.tables("queues").compactMap(QueueSection.read)
        if let routes = top.subtable("routes") { config.routes = RoutesSection.read(routes) }
        if let worker = top.subtable("worker") { config.worker = WorkerSection.read(worker) }
        if let tasks = top.subtable("tasks") {
            for name in tasks.table.keys {
                guard let task = tasks.subtable(name) else { continue }
                config.tasks[name] = TaskSection.read(task)
            }
        }
        if let schedules = top.subtable("schedules") {
            for name in schedules.table.keys {
                guard let schedule = schedules.subtable(name) else { continue }
                if let settings = ScheduleSection.read(schedule, name: name) { config.schedules[name] = settings }
            }
        }
        return config
    }
}

import AMQP
import FoundationEssentials
import Metrics

/// Counts and times every task a worker takes, through swift-metrics: the worker's own middleware, so a process
/// that bootstraps a metrics backend (as `amqp-worker --metrics-port` does with Prometheus) sees
///
/// - `amqp_tasks_tasks_total{task, queue, outcome}`: a counter of recorded outcomes (`TaskMetricsLabels.Outcome`);
/// - `amqp_tasks_task_runtime_seconds{task, queue}`: a timer (a histogram in Prometheus) of handler runs;
/// - `amqp_tasks_tasks_in_progress{task, queue}`: a meter (a gauge) of handlers running now;
/// - `amqp_tasks_task_queue_wait_seconds{task, queue}`: a timer from the message's AMQP `timestamp` property (when
///   its publisher set one; whole seconds) to the handler's start.
///
/// The `task` label is the task's name only when the worker has a handler for it, else `unknown`: names come from
/// senders, so a flood of garbage names must not make a series each.
struct TaskMetricsMiddleware: HookDeclaringMiddleware {
    let hooks: MiddlewareHooks = [.run, .recorded, .rejected]
    let labels: TaskMetricsLabels
    let factory: any MetricsFactory

    init(knownTasks: Set<String>, factory: any MetricsFactory) {
        labels = TaskMetricsLabels(knownTasks: knownTasks)
        self.factory = factory
    }

    func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue {
        let dimensions = labels.dimensions(task: task.taskName, queue: task.queue)
        let started = Date()
        if let published = task.publishedAt {
            Timer(label: TaskMetricNames.queueWait, dimensions: dimensions, factory: factory)
                .recordNanoseconds(Self.nanoseconds(max(0, started.timeIntervalSince(published))))
        }
        let inProgress = Meter(label: TaskMetricNames.inProgress, dimensions: dimensions, factory: factory)
        inProgress.increment()
        let clock = ContinuousClock.now
        defer {
            inProgress.decrement()
            Timer(label: TaskMetricNames.runtime, dimensions: dimensions, factory: factory)
                .record(duration: ContinuousClock.now - clock)
        }
        return try await next(task)
    }

    func recorded(_ outcome: TaskOutcome, of task: TaskContext) async {
        guard let name = TaskMetricsLabels.Outcome(outcome) else { return }
        count(name, task: task.taskName, queue: task.queue)
    }

    /// A message that never became a task: counted as `dead_lettered`, under its claimed name when the worker
    /// knows it (else `unknown`).
    func rejected(_ message: ReceivedMessage, because rejection: TaskRejection) async {
        count(.deadLettered, task: rejection.taskName ?? "", queue: message.queue)
    }

    private func count(_ outcome: TaskMetricsLabels.Outcome, task: String, queue: String) {
        var dimensions = labels.dimensions(task: task, queue: queue)
        dimensions.append(("outcome", outcome.rawValue))
        Counter(label: TaskMetricNames.tasksTotal, dimensions: dimensions, factory: factory).increment()
    }

    private static func nanoseconds(_ seconds: TimeInterval) -> Int64 {
        Int64(min(seconds, Double(Int64.max / 1_000_000_000)) * 1e9)
    }
}

/// The names of the metrics a worker reports through swift-metrics (see `TaskMetricsMiddleware` and `Worker`).
public enum TaskMetricNames {
    /// Counter of recorded task outcomes, labelled `task`, `queue` and `outcome`.
    public static let tasksTotal = "amqp_tasks_tasks_total"
    /// Timer (histogram) of handler runtimes, labelled `task` and `queue`.
    public static let runtime = "amqp_tasks_task_runtime_seconds"
    /// Meter (gauge) of handlers running now, labelled `task` and `queue`.
    public static let inProgress = "amqp_tasks_tasks_in_progress"
    /// Timer (histogram) from a message's publish `timestamp` to its handler's start, labelled `task` and `queue`.
    public static let queueWait = "amqp_tasks_task_queue_wait_seconds"
    /// Counter of the worker's connections to the broker after its first one.
    public static let reconnects = "amqp_tasks_worker_reconnects_total"
    /// Counter of the tasks a `TaskClient` published, labelled `outcome`: `confirmed` or `refused` by the broker.
    public static let clientSends = "amqp_tasks_client_sends_total"
    /// Timer (histogram) of a `TaskClient` publish until the broker's confirms came back (per send or batch).
    public static let clientConfirmLatency = "amqp_tasks_client_confirm_seconds"
    /// Counter of a `TaskClient`'s publishes repeated because their connection was lost before the confirm.
    public static let clientRepublishes = "amqp_tasks_client_republishes_total"
}

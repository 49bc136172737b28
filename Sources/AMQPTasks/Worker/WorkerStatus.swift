/// What a worker is doing now, for a health check: whether it is connected to the broker and which of its queues it
/// consumes (`Worker.status`).
public struct WorkerStatus: Sendable, Equatable {
    /// True while the worker holds an open connection to the broker (between connecting and losing it).
    public var connected: Bool
    /// The queues the worker consumes: those configured, plus those `add_consumer` added, minus those
    /// `cancel_consumer` cancelled.
    public var queues: [String]
    /// How many consumer slots consume each queue now; a slot whose consumer paused while its task is in custody
    /// still counts (it will take tasks again once that task ends).
    public var consumers: [String: Int]

    /// Connected, and every queue it consumes has at least one consumer: what `/healthz` answers 200 to.
    public var isHealthy: Bool {
        connected && !queues.isEmpty && queues.allSatisfy { (consumers[$0] ?? 0) > 0 }
    }

    /// The queues it should consume that no consumer takes tasks from now.
    public var idleQueues: [String] { queues.filter { (consumers[$0] ?? 0) == 0 } }
}

import AMQP
import FoundationEssentials

/// What is left of the delay queues of earlier builds, so tasks waiting there when a worker is upgraded still arrive.
///
/// Earlier builds parked delayed tasks in their own queues, `amqp-tasks.delay.quorum.<N>s` (and before that the
/// classic `amqp-tasks.delay.<N>s`), which dead-letter to the direct exchange `amqp-tasks.due` with the task
/// queue's name as routing key. Delays now go through `NativeDelayedDelivery`; no new queue of the old kind is
/// created, but every worker still binds the queues it consumes to `amqp-tasks.due` (cheap), so what the old queues
/// hold arrives when due. A message whose queue is gone has no binding there: the exchange's alternate exchange
/// puts it in `amqp-tasks.due.unroutable`, where it waits to be looked at. Once the old queues are empty
/// (`rabbitmqctl list_queues name messages | grep amqp-tasks.delay`), an operator may delete them.
public enum DelayQueues {
    /// Where delay queues send what is due; task queues are bound to it by their name.
    public static let dueExchange = "amqp-tasks.due"
    /// Delayed tasks whose queue no longer exists.
    public static let unroutable = "amqp-tasks.due.unroutable"

    /// Declares the due exchange and where its unroutable messages go.
    public static func declareDue(on channel: Channel) async throws {
        try await channel.declareExchange(unroutable, type: .fanout, durable: true)
        try await channel.declareQueue(unroutable, durable: true, arguments: ["x-queue-type": "quorum"])
        try await channel.bindQueue(unroutable, to: unroutable)
        try await channel.declareExchange(
            dueExchange, type: .direct, durable: true, arguments: ["alternate-exchange": .string(unroutable)])
    }

    /// Lets `queue` receive the delayed tasks parked for it (a worker does this for each queue it consumes).
    public static func bindTarget(_ queue: String, on channel: Channel) async throws {
        try await declareDue(on: channel)
        try await channel.bindQueue(queue, to: dueExchange, routingKey: queue)
    }
}

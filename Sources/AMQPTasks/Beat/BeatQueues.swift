import AMQP

/// The queues through which periodic-scheduler instances agree on one sender and remember what was sent.
///
/// - `amqp-tasks.beat.leader`: exclusive to the connection of the instance that sends ticks (the leader). Others
///   get 405 RESOURCE_LOCKED when they declare it, and try again every second; when the leader's connection
///   ends (it stops, is killed, or its host goes silent past the heartbeat) the broker deletes the queue and the
///   next instance to declare it leads.
/// - `amqp-tasks.beat.leader-info`: the leader's name, written when it takes over (for `amqp-task schedules`).
/// - `amqp-tasks.beat.state.<schedule>`: the last tick sent of each schedule.
///
/// The last two are replicated quorum queues holding one message each (`x-max-length` 1, `x-overflow`
/// `drop-head`): publishing a new record drops the old one, so a tick's task and its record can be published in
/// one transaction without acknowledging anything.
public enum BeatQueues {
    public static let leader = "amqp-tasks.beat.leader"
    public static let leaderInfo = "amqp-tasks.beat.leader-info"

    /// The state queue of `schedule`.
    public static func state(_ schedule: String) -> String { "amqp-tasks.beat.state.\(schedule)" }

    /// The arguments of the one-message queues (`leader-info`, `state.*`); every instance declares them alike.
    public static let lastValueArguments: FieldTable = [
        "x-queue-type": .string("quorum"), "x-max-length": .int32(1), "x-overflow": .string("drop-head"),
    ]

    /// Declares a one-message queue.
    static func declareLastValue(_ name: String, on channel: Channel) async throws {
        try await channel.declareQueue(name, durable: true, arguments: lastValueArguments)
    }

    /// The messages of a one-message queue without taking them: got unacknowledged on `channel`, which the caller
    /// then closes so they return. Usually one; more only around a concurrent write.
    static func peek(_ name: String, on channel: Channel) async throws -> [Delivery] {
        var deliveries: [Delivery] = []
        while deliveries.count < 16, let delivery = try await channel.get(queue: name) { deliveries.append(delivery) }
        return deliveries
    }
}

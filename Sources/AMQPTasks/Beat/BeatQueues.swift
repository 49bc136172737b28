import AMQP

/// The queues through which periodic-scheduler instances agree on one sender and remember what was sent.
///
/// - `amqp-tasks.beat.leader`: exclusive to the connection of the instance that sends ticks (the leader). Others
///   get 405 RESOURCE_LOCKED when they declare it, and try again every second; when the leader's connection
///   ends (it stops, is killed, or its host goes silent past the heartbeat) the broker deletes the queue and the
///   next instance to declare it leads.
/// - `amqp-tasks.beat.state.<schedule>`: records of the ticks sent of one schedule (a replicated quorum queue). The
///   leader holds them unacknowledged; each tick's transaction adds the new record and acknowledges the older
///   ones. When the leader's connection ends they return to the queue, and the next leader reads them: the latest
///   tick wins, whatever order they come back in.
/// - `amqp-tasks.beat.holder.<identity>`: exclusive to the leader's connection too, declared once it holds the
///   lock: proof for readers that the instance a note names is the one that leads now.
/// - `amqp-tasks.beat.leader-info`: the leader's name and the last ticks it sent, for `amqp-task schedules` (which
///   cannot see records a leader holds). One message (`x-max-length` 1, `x-overflow` `drop-head`); only for
///   display: a reader returning an older copy at the wrong moment makes it stale until the leader's next write.
public enum BeatQueues {
    public static let leader = "amqp-tasks.beat.leader"
    public static let leaderInfo = "amqp-tasks.beat.leader-info"

    /// The queue that proves `identity` holds the lock (see above); long names are cut to fit AMQP's 255 bytes.
    public static func holder(_ identity: String) -> String {
        var name = "amqp-tasks.beat.holder.\(identity)"
        while name.utf8.count > 255 { name.removeLast() }
        return name
    }

    /// The state queue of `schedule`.
    public static func state(_ schedule: String) -> String { "amqp-tasks.beat.state.\(schedule)" }

    /// The arguments of the state queues; every instance declares them alike. A record goes back to its queue
    /// each time a leader's connection ends or a reader returns it; the explicit delivery limit keeps brokers
    /// whose quorum queues have a default one (RabbitMQ 4) from dropping a record after a few such returns.
    public static let stateArguments: FieldTable = [
        "x-queue-type": .string("quorum"), "x-delivery-limit": .int32(1_000_000),
    ]

    /// The arguments of `leader-info`: one message, the newest.
    public static let leaderInfoArguments: FieldTable = [
        "x-queue-type": .string("quorum"), "x-max-length": .int32(1), "x-overflow": .string("drop-head"),
    ]

    /// At most this many records are read from a queue at once (a state queue holds one or two).
    static let readLimit = 1000

    /// The messages ready in `name`, got unacknowledged on `channel` (the caller acknowledges them, or closes the
    /// channel to return them).
    static func getAll(_ name: String, on channel: Channel) async throws -> [Delivery] {
        var deliveries: [Delivery] = []
        while deliveries.count < readLimit, let delivery = try await channel.get(queue: name) {
            deliveries.append(delivery)
        }
        return deliveries
    }
}

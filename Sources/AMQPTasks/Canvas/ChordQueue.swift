import AMQP

/// The broker-side home of one chord: the durable quorum queue `amqp-tasks.chord.<chord id>`, which holds exactly
/// one message, the chord's `ChordState` (see `ChordBarrier` for how workers take turns on it).
///
/// The sender declares it and publishes the first state before it sends any member; workers never declare it, so a
/// chord whose queue is gone is known to be finished (or abandoned) and nothing a late or redelivered member does
/// can start it again. The worker that fires the callback (or the errbacks) deletes it. `x-expires` is the backstop
/// for chords that never finish (a sender that died before sending every member, a member dead-lettered): the
/// broker deletes the queue after `expiry` (seven days) without a consumer, a `basic.get` or a declaration; every
/// member's join consumes from it, so the clock restarts with each member that finishes.
public enum ChordQueue {
    /// The queue of chord `chordId`; a long id is cut to fit AMQP's 255 bytes.
    public static func name(_ chordId: String) -> String {
        var name = "amqp-tasks.chord.\(chordId)"
        while name.utf8.count > 255 { name.removeLast() }
        return name
    }

    /// How long a chord queue nobody uses lives: seven days.
    public static let expiry: Duration = .seconds(7 * 24 * 3600)

    /// Quorum (replicated, and transactions apply to it atomically), expiring after `expiry`, and with a delivery
    /// limit high enough that the state survives every worker that dies holding it (RabbitMQ 4's default is 20).
    public static let arguments: FieldTable = [
        "x-queue-type": .string("quorum"),
        "x-expires": .int32(Int32(expiry.components.seconds * 1000)),
        "x-delivery-limit": .int32(1_000_000),
    ]

    /// How long a worker waits for its turn on a chord's state before its member's recording fails (and the member
    /// is requeued to try again). A turn takes milliseconds; a worker that dies holding the state gives it back as
    /// soon as the broker sees its connection end.
    static let turnWait: Duration = .seconds(120)
}

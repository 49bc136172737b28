import AMQP
import FoundationEssentials

/// The state records a leader holds unacknowledged on its transaction channel, by schedule: what it read at
/// takeover and each record it wrote since. A tick's transaction acknowledges the ones it supersedes.
struct HeldRecords {
    struct Held {
        let deliveryTag: UInt64
        /// Nil for a message that is not a record (acknowledged with the next tick, as superseded).
        let tick: Date?
    }

    private(set) var bySchedule: [String: [Held]] = [:]

    /// The latest tick recorded for `schedule`.
    func lastTick(_ schedule: String) -> Date? {
        bySchedule[schedule, default: []].compactMap(\.tick).max()
    }

    /// Takes (holds) every record ready in `schedule`'s state queue.
    mutating func take(_ schedule: String, on channel: Channel) async throws {
        for delivery in try await BeatQueues.getAll(BeatQueues.state(schedule), on: channel) {
            bySchedule[schedule, default: []].append(Held(deliveryTag: delivery.deliveryTag, tick: BeatRecord(body: delivery.body)?.tick))
        }
    }

    /// Acknowledges, inside the channel's open transaction, the records of `schedule` older than `tick`; call
    /// `superseded(_:before:)` once the transaction is committed.
    func acknowledgeOlder(_ schedule: String, than tick: Date, on channel: Channel) async throws {
        for held in bySchedule[schedule, default: []] where held.tick.map({ $0 < tick }) ?? true {
            try await channel.ack(deliveryTag: held.deliveryTag)
        }
    }

    /// Forgets the records `acknowledgeOlder` acknowledged, after the commit.
    mutating func superseded(_ schedule: String, before tick: Date) {
        bySchedule[schedule] = bySchedule[schedule, default: []].filter { held in held.tick.map { $0 >= tick } ?? false }
    }
}

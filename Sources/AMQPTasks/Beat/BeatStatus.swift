import AMQP
import FoundationEssentials

/// What the broker says about the periodic scheduler: who leads, and the last tick sent of each schedule
/// (`amqp-task schedules` shows it). Reading takes nothing away: messages are got unacknowledged and returned.
public struct BeatStatus: Sendable {
    /// The leader's name, or nil when no instance holds the lock.
    public var leader: String?
    /// When the leader took over, if known.
    public var leaderSince: Date?
    /// The last tick sent of each schedule that has one: the latest of the leader's note and the records ready in
    /// the schedule's state queue (a leader holds its records, so its note is what shows them).
    public var lastSent: [String: Date]

    /// Reads the lock, the leader's note and the state of `schedules` through `connection`.
    public static func read(schedules: [String], on connection: Connection) async throws -> BeatStatus {
        var status = BeatStatus(leader: nil, leaderSince: nil, lastSent: [:])
        let note = try await records(in: BeatQueues.leaderInfo, on: connection).max { $0.written < $1.written }
        if try await isHeld(BeatQueues.leader, on: connection) {
            // The note may still be the previous leader's: it names the leader only while its holder queue exists.
            if let note, try await isHeld(BeatQueues.holder(note.writer), on: connection) {
                status.leader = note.writer
                status.leaderSince = note.since
            } else {
                status.leader = Self.takingOver
            }
        }
        for schedule in schedules {
            let recorded = try await records(in: BeatQueues.state(schedule), on: connection).compactMap(\.tick)
            if let last = (recorded + [note?.lastTicks[schedule]].compactMap { $0 }).max() {
                status.lastSent[schedule] = last
            }
        }
        return status
    }

    /// What `leader` says while an instance holds the lock but has not yet named itself (for a second or so).
    public static let takingOver = "(an instance taking over, not yet named)"

    /// True when some connection holds the exclusive queue `queue`.
    private static func isHeld(_ queue: String, on connection: Connection) async throws -> Bool {
        let channel = try await connection.openChannel()
        do {
            _ = try await channel.inspectQueue(queue)
            try? await channel.close()
            return true  // Only its own holder may see an exclusive queue; reachable here means held.
        } catch let error as AMQPError where error.replyCode == .resourceLocked {
            return true
        } catch let error as AMQPError where error.replyCode == .notFound {
            return false
        }
    }

    /// The records ready in `queue`, left in it; none when the queue does not exist.
    private static func records(in queue: String, on connection: Connection) async throws -> [BeatRecord] {
        let channel = try await connection.openChannel()
        do {
            // Look before getting: a basic.get on a quorum queue declared a moment ago can find its process not yet
            // running (541 "noproc", seen on 3.10.8 right after a leader declared its state queue), which closes the
            // whole connection; an empty queue needs no get.
            guard try await channel.inspectQueue(queue).messageCount > 0 else {
                try? await channel.close()
                return []
            }
            let deliveries = try await BeatQueues.getAll(queue, on: channel)
            try? await channel.close()  // returns what was got
            return deliveries.compactMap { BeatRecord(body: $0.body) }
        } catch let error as AMQPError where error.replyCode == .notFound {
            return []
        }
    }
}

import AMQP
import Foundation

/// What the broker says about the periodic scheduler: who leads, and the last tick sent of each schedule
/// (`amqp-task schedules` shows it). Reading takes nothing away: the records are got unacknowledged and returned.
public struct BeatStatus: Sendable {
    /// The leader's name, or nil when no instance holds the lock.
    public var leader: String?
    /// When the leader took over, if known.
    public var leaderSince: Date?
    /// The last tick record of each schedule that has one.
    public var lastSent: [String: BeatRecord]

    /// Reads the lock, the leader's name and the state of `schedules` through `connection`.
    public static func read(schedules: [String], on connection: Connection) async throws -> BeatStatus {
        var status = BeatStatus(leader: nil, leaderSince: nil, lastSent: [:])
        let lockChannel = try await connection.openChannel()
        var locked = false
        do {
            _ = try await lockChannel.inspectQueue(BeatQueues.leader)
            locked = true  // Only its own holder may see an exclusive queue; reachable here means held.
            try? await lockChannel.close()
        } catch let error as AMQPError where error.replyCode == .resourceLocked {
            locked = true
        } catch let error as AMQPError where error.replyCode == .notFound {
            locked = false
        }
        if locked {
            let info = try await records(in: BeatQueues.leaderInfo, on: connection).max { $0.written < $1.written }
            status.leader = info?.writer ?? "(an instance that has not yet written its name)"
            status.leaderSince = info?.written
        }
        status.lastSent = try await lastTicks(of: schedules, on: connection)
        return status
    }

    /// The latest record of each schedule's state queue; schedules without one (or without a queue) are absent.
    static func lastTicks(of schedules: [String], on connection: Connection) async throws -> [String: BeatRecord] {
        var last: [String: BeatRecord] = [:]
        for schedule in schedules {
            let latest = try await records(in: BeatQueues.state(schedule), on: connection)
                .filter { $0.tick != nil }.max { $0.tick! < $1.tick! }
            if let latest { last[schedule] = latest }
        }
        return last
    }

    /// The records in a one-message queue, left in it; none when the queue does not exist.
    private static func records(in queue: String, on connection: Connection) async throws -> [BeatRecord] {
        let channel = try await connection.openChannel()
        do {
            let deliveries = try await BeatQueues.peek(queue, on: channel)
            try? await channel.close()  // returns what was got
            return deliveries.compactMap { BeatRecord(body: $0.body) }
        } catch let error as AMQPError where error.replyCode == .notFound {
            return []
        }
    }
}

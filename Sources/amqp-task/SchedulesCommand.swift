import AMQP
import AMQPTasks
import ArgumentParser
import Foundation

/// `amqp-task schedules`: the file's `[schedules."NAME"]` with their next run and last tick sent, and which
/// `amqp-worker --beat` instance sends them.
struct Schedules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the periodic schedules: task, timing, next run, last tick sent, and the leader sending them.")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let (configuration, connection) = try await common.connect()
        let schedules = configuration.schedules.values.sorted { $0.name < $1.name }
        let status = try await BeatStatus.read(schedules: schedules.map(\.name), on: connection)
        await connection.close()
        let now = Date()
        var rows: [[String]] = [["schedule", "task", "timing", "next run", "last sent"]]
        for schedule in schedules {
            let last = status.lastSent[schedule.name]
            let planner = TickPlanner(timing: schedule.timing, lastSent: last, now: now)
            // A tick due but not yet sent (every sender down) goes as soon as a leader runs: "now".
            let next = planner.due(at: now) != nil ? "now (missed tick)" : planner.nextTick(after: now).map(TickID.timestamp) ?? "never"
            rows.append([schedule.name, schedule.task, "\(schedule.timing)", next, last.map(TickID.timestamp) ?? "never"])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max()! }
        for row in rows {
            let cells = zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
            print(cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        if schedules.isEmpty { print("(no [schedules.\"NAME\"] in the configuration)") }
        if let leader = status.leader {
            print("leader: \(leader)" + (status.leaderSince.map { " (since \(TickID.timestamp($0)))" } ?? ""))
        } else {
            print("leader: none (no amqp-worker --beat is connected)")
        }
    }
}

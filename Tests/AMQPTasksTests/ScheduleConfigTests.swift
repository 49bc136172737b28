import AMQPTasks
import Foundation
import Testing

/// `[schedules."NAME"]` in amqp-tasks.toml: what it reads, and errors with file, line and key.
@Suite struct ScheduleConfigTests {
    func errors(_ text: String) -> [String] {
        do {
            _ = try TasksConfiguration.parse(text, file: "bad.toml", environment: [:])
            return []
        } catch let errors as ConfigErrors {
            return errors.errors.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    @Test func everyKeyIsRead() throws {
        let c = try TasksConfiguration.parse(
            """
            [[queues]]
            name = "reports"
            [schedules."reports.nightly"]
            task = "reports.build"
            cron = "30 2 * * mon-fri"
            timezone = "Europe/Paris"
            args = [1, "two", [3]]
            kwargs = { to = "ops", urgent = true, ratio = 0.5 }
            queue = "reports"
            expires = "1h"
            [schedules.heartbeat]
            task = "demo.add"
            every = "30s"
            """, file: "ok.toml", environment: [:])
        let nightly = try #require(c.schedules["reports.nightly"])
        #expect(nightly.name == "reports.nightly")
        #expect(nightly.task == "reports.build")
        #expect(nightly.timing == .cron(try CronExpression("30 2 * * mon-fri", timeZone: TimeZone(identifier: "Europe/Paris")!)))
        #expect(nightly.args == [.int(1), .string("two"), .array([.int(3)])])
        #expect(nightly.kwargs == ["to": .string("ops"), "urgent": .bool(true), "ratio": .double(0.5)])
        #expect(nightly.queue == "reports")
        #expect(nightly.expires == .seconds(3600))
        let heartbeat = try #require(c.schedules["heartbeat"])
        #expect(heartbeat.timing == .every(seconds: 30))
        #expect(heartbeat.args.isEmpty && heartbeat.kwargs.isEmpty && heartbeat.queue == nil && heartbeat.expires == nil)
    }

    @Test func mistakesAreReportedWithFileLineAndKey() {
        let found = errors(
            """
            [schedules.both]
            task = "t"
            every = "5m"
            cron = "* * * * *"
            [schedules.neither]
            task = "t"
            [schedules.badevery]
            task = "t"
            every = "5 minutes"
            [schedules.fraction]
            task = "t"
            every = "1.5s"
            [schedules.badcron]
            task = "t"
            cron = "61 * * * *"
            [schedules.badzone]
            task = "t"
            cron = "0 3 * * *"
            timezone = "Mars/Olympus"
            [schedules.zoneonevery]
            task = "t"
            every = "1m"
            timezone = "Europe/Paris"
            [schedules.notask]
            every = "1m"
            [schedules.unknownqueue]
            task = "t"
            every = "1m"
            queue = "nowhere"
            colour = "blue"
            [schedules.badexpires]
            task = "t"
            every = "1m"
            expires = -5
            """)
        #expect(found.contains("bad.toml:1: schedules.both: give either every or cron, not both"), "\(found)")
        #expect(found.contains { $0.hasPrefix("bad.toml:5: schedules.neither: missing every") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("bad.toml:9: schedules.badevery.every: \"5 minutes\" is not a duration") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("bad.toml:12: schedules.fraction.every: expected whole seconds") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("bad.toml:15: schedules.badcron.cron: 61 in '61' is outside the minute range") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("bad.toml:19: schedules.badzone.timezone: unknown time zone \"Mars/Olympus\"") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("bad.toml:23: schedules.zoneonevery.timezone: timezone applies to cron only") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("bad.toml:24: schedules.notask: missing task") }, "\(found)")
        #expect(found.contains("bad.toml:29: schedules.unknownqueue.queue: queue \"nowhere\" is not declared in [[queues]]"), "\(found)")
        #expect(found.contains { $0.hasPrefix("bad.toml:30: schedules.unknownqueue.colour: unknown key") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("bad.toml:34: schedules.badexpires.expires: expected a number > 0") }, "\(found)")
        #expect(found.count == 11, "\(found)")
    }
}

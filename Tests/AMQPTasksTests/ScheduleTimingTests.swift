import AMQPTasks
import Foundation
import Testing

/// Cron and `every` arithmetic, tick ids and the tick planner: pure computations, no broker.
@Suite struct ScheduleTimingTests {
    static let utc = TimeZone(identifier: "UTC")!
    static let newYork = TimeZone(identifier: "America/New_York")!

    func date(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        return formatter.date(from: text)!
    }

    func next(_ cron: String, after: String, zone: TimeZone = utc) throws -> String? {
        try CronExpression(cron, timeZone: zone).next(after: date(after)).map(TickID.timestamp)
    }

    @Test func stepsRangesAndListsPickTheNextMinute() throws {
        #expect(try next("*/15 * * * *", after: "2026-11-27T10:07:00Z") == "2026-11-27T10:15:00Z")
        #expect(try next("*/15 * * * *", after: "2026-11-27T10:45:00Z") == "2026-11-27T11:00:00Z", "strictly after")
        #expect(try next("5/20 * * * *", after: "2026-11-27T10:06:00Z") == "2026-11-27T10:25:00Z", "a/s runs from a to the end")
        #expect(try next("0,30 8-9 * * *", after: "2026-11-27T09:30:00Z") == "2026-11-28T08:00:00Z")
        #expect(try next("0 9-17/4 * * *", after: "2026-11-27T13:00:00Z") == "2026-11-27T17:00:00Z")
        #expect(try next("@hourly", after: "2026-11-27T10:07:00Z") == "2026-11-27T11:00:00Z")
        #expect(try next("@daily", after: "2026-12-31T10:07:00Z") == "2027-01-01T00:00:00Z")
    }

    @Test func namesAndDaysOfWeek() throws {
        // 2026-11-27 is a Friday.
        #expect(try next("0 9 * * mon-fri", after: "2026-11-27T09:00:00Z") == "2026-11-30T09:00:00Z")
        #expect(try next("30 4 1 JAN,jul *", after: "2026-11-27T00:00:00Z") == "2027-01-01T04:30:00Z")
        #expect(try next("0 12 * * 7", after: "2026-11-27T00:00:00Z") == "2026-11-29T12:00:00Z", "7 is Sunday")
        #expect(try next("0 12 * * sun", after: "2026-11-27T00:00:00Z") == "2026-11-29T12:00:00Z")
        // Both day fields restricted: either matches (the 1st, or any Monday).
        #expect(try next("0 0 1 * mon", after: "2026-11-27T00:00:00Z") == "2026-11-30T00:00:00Z")
        #expect(try next("0 0 1 * mon", after: "2026-11-30T00:00:00Z") == "2026-12-01T00:00:00Z")
        // Only one restricted: it alone decides.
        #expect(try next("0 0 * * mon", after: "2026-11-30T00:00:00Z") == "2026-12-07T00:00:00Z")
        #expect(try next("0 0 29 2 *", after: "2026-03-01T00:00:00Z") == "2028-02-29T00:00:00Z")
    }

    @Test func latestIsTheLastFiringAtOrBefore() throws {
        let cron = try CronExpression("*/15 * * * *")
        #expect(cron.latest(atOrBefore: date("2026-11-27T10:15:00Z")).map(TickID.timestamp) == "2026-11-27T10:15:00Z")
        #expect(cron.latest(atOrBefore: date("2026-11-27T10:14:59Z")).map(TickID.timestamp) == "2026-11-27T10:00:00Z")
        let weekly = try CronExpression("0 3 * * sat")
        #expect(weekly.latest(atOrBefore: date("2026-11-27T10:00:00Z")).map(TickID.timestamp) == "2026-11-21T03:00:00Z")
    }

    @Test func aLocalTimeSkippedByDSTIsSkippedAndARepeatedOneRunsOnce() throws {
        // New York, 2026: clocks go 02:00 EST → 03:00 EDT on March 8, and 02:00 EDT → 01:00 EST on November 1.
        #expect(
            try next("30 2 * * *", after: "2026-03-07T13:00:00Z", zone: Self.newYork) == "2026-03-09T06:30:00Z",
            "02:30 does not exist on March 8: skipped, next is March 9 02:30 EDT")
        #expect(
            try next("0 * * * *", after: "2026-03-08T06:30:00Z", zone: Self.newYork) == "2026-03-08T07:00:00Z",
            "after 01:30 EST the next hour is 03:00 EDT")
        #expect(
            try next("30 1 * * *", after: "2026-10-31T12:00:00Z", zone: Self.newYork) == "2026-11-01T05:30:00Z",
            "01:30 happens twice on November 1: the first (EDT) one runs")
        #expect(
            try next("30 1 * * *", after: "2026-11-01T05:30:00Z", zone: Self.newYork) == "2026-11-02T06:30:00Z",
            "and the second (EST) one does not")
        let cron = try CronExpression("30 1 * * *", timeZone: Self.newYork)
        #expect(cron.latest(atOrBefore: date("2026-11-01T06:45:00Z")).map(TickID.timestamp) == "2026-11-01T05:30:00Z")
        #expect(
            try next("0 9 * * *", after: "2026-11-27T00:00:00Z", zone: TimeZone(identifier: "Europe/Paris")!)
                == "2026-11-27T08:00:00Z", "09:00 in Paris in winter is 08:00 UTC")
    }

    @Test func badExpressionsSayWhatIsWrong() {
        func problem(_ text: String) -> String {
            do {
                _ = try CronExpression(text)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(problem("* * *").contains("expected five fields"))
        #expect(problem("60 * * * *").contains("outside the minute range 0-59"))
        #expect(problem("0 24 * * *").contains("hour range"))
        #expect(problem("5-1 * * * *").contains("runs backwards"))
        #expect(problem("*/0 * * * *").contains("step"))
        #expect(problem("0 0 * * funday").contains("day of week"))
        #expect(problem("0 0 * foo *").contains("jan"), "names the month names")
        #expect(problem("0 0 30 2 *").contains("never fires"))
        #expect(problem("0 0 1,,2 * *").contains("empty list item"))
    }

    @Test func everyRunsOnAGridAnchoredAtTheEpoch() {
        let every = ScheduleTiming.every(seconds: 300)
        #expect(every.next(after: date("2026-11-27T10:07:30Z")).map(TickID.timestamp) == "2026-11-27T10:10:00Z")
        #expect(every.next(after: date("2026-11-27T10:10:00Z")).map(TickID.timestamp) == "2026-11-27T10:15:00Z")
        #expect(every.latest(atOrBefore: date("2026-11-27T10:10:00Z")).map(TickID.timestamp) == "2026-11-27T10:10:00Z")
        #expect(every.latest(atOrBefore: date("2026-11-27T10:14:59Z")).map(TickID.timestamp) == "2026-11-27T10:10:00Z")
        #expect(every.description == "every 5m")
        #expect(ScheduleTiming.every(seconds: 5400).description == "every 1h30m")
    }

    @Test func durationsAsWritten() {
        #expect(DurationText.seconds(in: "30s") == 30)
        #expect(DurationText.seconds(in: "5m") == 300)
        #expect(DurationText.seconds(in: "1h30m") == 5400)
        #expect(DurationText.seconds(in: "2d") == 172_800)
        #expect(DurationText.seconds(in: "1.5") == 1.5)
        #expect(DurationText.seconds(in: "5 minutes") == nil)
        #expect(DurationText.seconds(in: "m") == nil)
        #expect(DurationText.seconds(in: "5x") == nil)
        #expect(DurationText.seconds(in: "") == nil)
    }

    @Test func tickIdsAreUUID5OfScheduleAndTick() {
        // Python: uuid.uuid5(uuid.UUID("6f1f4b0e-5c1a-4f4e-9a53-2f3c1b7d0e61"), "smoke.tick@2026-11-27T05:05:16Z")
        let id = TickID.id(schedule: "smoke.tick", tick: date("2026-11-27T05:05:16Z"))
        #expect(id == "ff7f5b08-5561-51aa-912c-12acc45b4007")
        #expect(TickID.id(schedule: "smoke.tick", tick: date("2026-11-27T05:05:16Z").addingTimeInterval(0.7)) == id, "whole seconds")
        #expect(TickID.id(schedule: "other", tick: date("2026-11-27T05:05:16Z")) != id)
        #expect(TickID.id(schedule: "smoke.tick", tick: date("2026-11-27T05:05:17Z")) != id)
    }

    @Test func thePlannerSendsEachTickOnceAndOnlyTheLatestMissedOne() {
        let every10 = ScheduleTiming.every(seconds: 10)
        // A new schedule starts with the first tick after the takeover.
        var fresh = TickPlanner(timing: every10, lastSent: nil, now: date("2026-11-27T10:00:05Z"))
        #expect(fresh.due(at: date("2026-11-27T10:00:05Z")) == nil)
        #expect(fresh.nextTick(after: date("2026-11-27T10:00:05Z")) == date("2026-11-27T10:00:10Z"))
        #expect(fresh.due(at: date("2026-11-27T10:00:10Z")) == date("2026-11-27T10:00:10Z"))
        fresh.sent(date("2026-11-27T10:00:10Z"))
        #expect(fresh.due(at: date("2026-11-27T10:00:15Z")) == nil, "sent once")
        #expect(fresh.due(at: date("2026-11-27T10:00:35Z")) == date("2026-11-27T10:00:30Z"), "late: only the latest")

        // A restart after missing 10:00:10 … 10:00:30 sends 10:00:30 once, then nothing until 10:00:40.
        var restarted = TickPlanner(timing: every10, lastSent: date("2026-11-27T10:00:00Z"), now: date("2026-11-27T10:00:35Z"))
        #expect(restarted.due(at: date("2026-11-27T10:00:35Z")) == date("2026-11-27T10:00:30Z"))
        restarted.sent(date("2026-11-27T10:00:30Z"))
        #expect(restarted.due(at: date("2026-11-27T10:00:39Z")) == nil)
        #expect(restarted.due(at: date("2026-11-27T10:00:40Z")) == date("2026-11-27T10:00:40Z"))

        // Restarted before the next tick: nothing is repeated.
        let early = TickPlanner(timing: every10, lastSent: date("2026-11-27T10:00:30Z"), now: date("2026-11-27T10:00:31Z"))
        #expect(early.due(at: date("2026-11-27T10:00:31Z")) == nil)
        // A clock behind the last tick sent sends nothing until it passes it.
        let behind = TickPlanner(timing: every10, lastSent: date("2026-11-27T10:00:30Z"), now: date("2026-11-27T10:00:12Z"))
        #expect(behind.due(at: date("2026-11-27T10:00:12Z")) == nil)
        #expect(behind.nextTick(after: date("2026-11-27T10:00:12Z")) == date("2026-11-27T10:00:40Z"))
    }
}

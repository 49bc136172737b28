import AMQP
import FoundationEssentials

/// A standard five-field cron expression — minute, hour, day of month, month, day of week — or one of the
/// shorthands `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly`.
///
/// As in Vixie cron, when both the day of month and the day of week are restricted (neither begins with `*`), a
/// day matches if either does (`0 0 1 * mon` is the 1st and every Monday). Times are local to `timeZone`:
/// a local time that does not exist (the hour skipped when clocks go forward) is skipped, and a local time that
/// happens twice (when clocks go back) fires once, at its first occurrence.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The expression as written.
    public let text: String
    public let timeZone: TimeZone
    let minutes: CronField
    let hours: CronField
    let daysOfMonth: CronField
    let months: CronField
    let daysOfWeek: CronField

    /// How far `next`/`latest` search: long enough for any expression that can fire (`0 0 29 2 *` fires within
    /// 8 years); one that finds nothing in this span never fires (`0 0 30 2 *`) and is refused when parsed.
    static let searchDays = 366 * 8 + 2

    private static let shorthands = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    /// Parses `text`; throws `CronError` saying which field is wrong and why, or that the expression never fires.
    public init(_ text: String, timeZone: TimeZone = TimeZones.utc) throws(CronError) {
        self.text = text
        self.timeZone = timeZone
        let expanded = Self.shorthands[text.trimmingWhitespace().lowercased()] ?? text
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw CronError(
                "expected five fields (minute hour day-of-month month day-of-week, e.g. \"*/15 9-17 * * mon-fri\"), got \(fields.count)")
        }
        minutes = try CronField(fields[0], kind: .minute)
        hours = try CronField(fields[1], kind: .hour)
        daysOfMonth = try CronField(fields[2], kind: .dayOfMonth)
        months = try CronField(fields[3], kind: .month)
        daysOfWeek = try CronField(fields[4], kind: .dayOfWeek)
        guard next(after: Date(timeIntervalSince1970: 0)) != nil else {
            throw CronError("'\(text)' never fires (no month has such a day)")
        }
    }

    public var description: String { zoneName == "UTC" ? text : "\(text) (\(zoneName))" }

    /// The zone's identifier, UTC for both spellings of it (`TimeZones.utc`, which FoundationEssentials calls `GMT`,
    /// and Foundation's `TimeZone(identifier: "UTC")`).
    private var zoneName: String { timeZone.identifier == "GMT" ? "UTC" : timeZone.identifier }

    /// The first time strictly after `date` that the expression fires, or nil if none within `searchDays`.
    public func next(after date: Date) -> Date? {
        search(from: date, forward: true)
    }

    /// The last time at or before `date` that the expression fired, or nil if none within `searchDays`.
    public func latest(atOrBefore date: Date) -> Date? {
        search(from: date, forward: false)
    }

    /// Walks local days from `date`'s, forward or backward, and returns the first firing time past `date`.
    /// Within and across days, the first occurrence of a local time grows with it, so the first one found is the
    /// nearest.
    private func search(from date: Date, forward: Bool) -> Date? {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let startDay = LocalTime.floorDiv(seconds + timeZone.secondsFromGMT(for: date), 86_400)
        let days = forward
            ? Array(startDay - 1...startDay + Self.searchDays) : Array((startDay - Self.searchDays...startDay + 1).reversed())
        for day in days {
            let civil = LocalTime.civil(fromDays: day)
            guard dayMatches(month: civil.month, day: civil.day, weekday: LocalTime.weekday(ofDays: day)) else { continue }
            for hour in forward ? hours.values : hours.values.reversed() {
                for minute in forward ? minutes.values : minutes.values.reversed() {
                    let local = day * 86_400 + hour * 3600 + minute * 60
                    guard let instant = LocalTime.firstInstant(ofLocalSeconds: local, in: timeZone) else { continue }
                    if forward ? instant > date.timeIntervalSince1970 : instant <= date.timeIntervalSince1970 {
                        return Date(timeIntervalSince1970: instant)
                    }
                }
            }
        }
        return nil
    }

    private func dayMatches(month: Int, day: Int, weekday: Int) -> Bool {
        guard months.contains(month) else { return false }
        if daysOfMonth.restricted && daysOfWeek.restricted {
            return daysOfMonth.contains(day) || daysOfWeek.contains(weekday)
        }
        return daysOfMonth.contains(day) && daysOfWeek.contains(weekday)
    }

    public static func == (a: Self, b: Self) -> Bool { a.text == b.text && a.zoneName == b.zoneName }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(text)
        hasher.combine(zoneName)
    }
}

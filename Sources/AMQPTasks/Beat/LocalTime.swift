import FoundationEssentials

/// Calendar arithmetic on local wall-clock seconds (seconds since 1970-01-01T00:00 local), without `Calendar`:
/// days to dates, weekdays, and local times to instants across daylight-saving changes.
enum LocalTime {
    static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday).
    static func weekday(ofDays days: Int) -> Int { ((days % 7) + 7 + 4) % 7 }

    /// The first instant (seconds since the epoch) at which clocks in `zone` show `local`, or nil when they never
    /// do (the local time falls in the gap when clocks go forward). A time shown twice (clocks going back) gives
    /// the earlier instant.
    static func firstInstant(ofLocalSeconds local: Int, in zone: TimeZone) -> Double? {
        // The offsets in force around that time; a zone changes offset at most once within two days.
        let before = zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(local - 86_400)))
        let after = zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(local + 86_400)))
        var found: Double?
        for offset in Set([before, after]) {
            let instant = Double(local - offset)
            guard zone.secondsFromGMT(for: Date(timeIntervalSince1970: instant)) == offset else { continue }
            found = min(found ?? instant, instant)
        }
        return found
    }
}

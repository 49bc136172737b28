/// A TOML date, time, or both, with an offset or without: the text as written and its parts.
struct TOMLDateTime: Equatable, Sendable {
    /// A calendar day.
    struct Day: Equatable, Sendable {
        var year: Int
        var month: Int
        var day: Int
    }

    /// A time of day; `nanosecond` keeps the first nine digits of the fraction.
    struct Clock: Equatable, Sendable {
        var hour: Int
        var minute: Int
        var second: Int
        var nanosecond: Int
    }

    /// The value as the file wrote it.
    var text: String
    var day: Day?
    var clock: Clock?
    /// Minutes east of UTC (`Z` is 0); nil for a local date-time, date or time.
    var offsetMinutes: Int?

    /// The value in one spelling, as TOMLKit (toml++) wrote it: `1979-05-27T07:32:00.5Z` for
    /// `1979-05-27 07:32:00.500z`; `T` between date and time, the fraction without trailing zeros, a zero offset as `Z`.
    var canonicalText: String {
        func digits(_ value: Int, _ count: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, count - text.count)) + text
        }
        var text = ""
        if let day { text += "\(digits(day.year, 4))-\(digits(day.month, 2))-\(digits(day.day, 2))" }
        if day != nil, clock != nil { text += "T" }
        if let clock {
            text += "\(digits(clock.hour, 2)):\(digits(clock.minute, 2)):\(digits(clock.second, 2))"
            if clock.nanosecond != 0 {
                var fraction = digits(clock.nanosecond, 9)
                while fraction.hasSuffix("0") { fraction.removeLast() }
                text += "." + fraction
            }
        }
        if let offsetMinutes {
            let size = abs(offsetMinutes)
            text += offsetMinutes == 0 ? "Z" : "\(offsetMinutes < 0 ? "-" : "+")\(digits(size / 60, 2)):\(digits(size % 60, 2))"
        }
        return text
    }
}

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
}

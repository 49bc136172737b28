/// Reads TOML's RFC 3339 dates and times: `1979-05-27`, `07:32:00.999`, `1979-05-27T07:32:00` (or with a space
/// or a lowercase `t`), and with an offset `Z`, `z` or `±HH:MM`.
enum TOMLDateTimeReader {
    typealias Problem = TOMLScalar.Problem

    /// A local date, local date-time or offset date-time, from a token that starts with `YYYY-MM-DD`.
    static func dateTime(_ token: [UInt8], text: String) throws(Problem) -> TOMLValue {
        let day = try calendarDay(token, text: text)
        if token.count == 10 { return .localDate(TOMLDateTime(text: text, day: day)) }
        guard [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(token[10]) else {
            throw Problem(message: "'\(text)' is not a date-time: the date must be followed by T (or a space) and a time")
        }
        var index = 11
        let clock = try time(token, at: &index, text: text)
        if index == token.count { return .localDateTime(TOMLDateTime(text: text, day: day, clock: clock)) }
        let offset = try offsetMinutes(token[index...], text: text)
        return .offsetDateTime(TOMLDateTime(text: text, day: day, clock: clock, offsetMinutes: offset))
    }

    /// A local time `HH:MM:SS[.fraction]`.
    static func localTime(_ token: [UInt8], text: String) throws(Problem) -> TOMLValue {
        var index = 0
        let clock = try time(token, at: &index, text: text)
        guard index == token.count else {
            throw Problem(message: "'\(text)' is not a time: a time without a date is HH:MM:SS[.fraction], with no offset")
        }
        return .localTime(TOMLDateTime(text: text, clock: clock))
    }

    private static func number(_ token: [UInt8], _ start: Int, _ count: Int) -> Int? {
        guard start + count <= token.count else { return nil }
        var value = 0
        for byte in token[start..<(start + count)] {
            guard TOMLScalar.isDigit(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func calendarDay(_ token: [UInt8], text: String) throws(Problem) -> TOMLDateTime.Day {
        let year = number(token, 0, 4)!, month = number(token, 5, 2)!, day = number(token, 8, 2)!
        guard (1...12).contains(month) else {
            throw Problem(message: "'\(text)' is not a date: month \(month) is not from 01 to 12")
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else {
            throw Problem(message: "'\(text)' is not a date: day \(day) is not from 01 to \(days) in that month")
        }
        return TOMLDateTime.Day(year: year, month: month, day: day)
    }

    /// `HH:MM:SS[.fraction]` from `index`, which it moves past the time.
    private static func time(_ token: [UInt8], at index: inout Int, text: String) throws(Problem) -> TOMLDateTime.Clock {
        guard let hour = number(token, index, 2), token.count > index + 2, token[index + 2] == UInt8(ascii: ":"),
            let minute = number(token, index + 3, 2), token.count > index + 5, token[index + 5] == UInt8(ascii: ":"),
            let second = number(token, index + 6, 2)
        else {
            throw Problem(message: "'\(text)' is not a valid time: expected HH:MM:SS (TOML 1.0 needs the seconds), e.g. 07:32:00")
        }
        guard hour <= 23, minute <= 59, second <= 60 else {
            throw Problem(message: "'\(text)' is not a valid time: hour 00-23, minute 00-59, second 00-60")
        }
        index += 8
        var nanosecond = 0
        if index < token.count, token[index] == UInt8(ascii: ".") {
            index += 1
            var count = 0
            while index < token.count, TOMLScalar.isDigit(token[index]) {
                if count < 9 { nanosecond = nanosecond * 10 + Int(token[index] - UInt8(ascii: "0")) }
                count += 1
                index += 1
            }
            guard count > 0 else {
                throw Problem(message: "'\(text)' is not a valid time: a '.' must be followed by the fraction's digits")
            }
            for _ in count..<max(count, 9) { nanosecond *= 10 }
        }
        return TOMLDateTime.Clock(hour: hour, minute: minute, second: second, nanosecond: nanosecond)
    }

    private static func offsetMinutes(_ rest: ArraySlice<UInt8>, text: String) throws(Problem) -> Int {
        let bytes = Array(rest)
        if bytes == [UInt8(ascii: "Z")] || bytes == [UInt8(ascii: "z")] { return 0 }
        guard bytes.count == 6, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-"),
            let hours = number(bytes, 1, 2), bytes[3] == UInt8(ascii: ":"), let minutes = number(bytes, 4, 2),
            hours <= 23, minutes <= 59
        else {
            throw Problem(message: "'\(text)' is not a valid date-time: after the time comes Z, or an offset ±HH:MM such as +02:00, or nothing")
        }
        return (bytes[0] == UInt8(ascii: "-") ? -1 : 1) * (hours * 60 + minutes)
    }
}

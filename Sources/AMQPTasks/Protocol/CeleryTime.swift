import AMQP
import FoundationEssentials
import Glibc

/// Celery's timestamps: ISO 8601 with microseconds and a UTC offset.
public enum CeleryTime {
    /// `2026-11-25T15:22:28.144239+00:00`.
    public static func format(_ date: Date) -> String {
        // Years 1 to 9999, as Python's datetime: a date outside would not survive the round trip anyway.
        let raw = date.timeIntervalSince1970
        let seconds = raw.isFinite ? min(max(raw, -62_135_596_800), 253_402_300_799) : 0
        let whole = seconds.rounded(.down)
        let micros = Int(((seconds - whole) * 1_000_000).rounded())
        var time = time_t(whole)
        var parts = tm()
        gmtime_r(&time, &parts)
        return formatted(parts, micros: min(micros, 999_999))
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` written digit by digit: every result and event carries one, and
    /// `String(format:)` cost about 44,000 instructions per call (Foundation's varargs formatter), this about 300.
    private static func formatted(_ parts: tm, micros: Int) -> String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            var at = 0
            func put(_ value: Int, digits: Int) {
                var rest = value
                for index in stride(from: at + digits - 1, through: at, by: -1) {
                    buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                at += digits
            }
            func put(_ character: Unicode.Scalar) {
                buffer[at] = UInt8(ascii: character)
                at += 1
            }
            put(Int(parts.tm_year) + 1900, digits: 4)
            put("-")
            put(Int(parts.tm_mon) + 1, digits: 2)
            put("-")
            put(Int(parts.tm_mday), digits: 2)
            put("T")
            put(Int(parts.tm_hour), digits: 2)
            put(":")
            put(Int(parts.tm_min), digits: 2)
            put(":")
            put(Int(parts.tm_sec), digits: 2)
            put(".")
            put(micros, digits: 6)
            for character in "+00:00".unicodeScalars { put(character) }
            return at
        }
    }

    /// Parses ISO 8601 with or without fractional seconds and offset (a missing offset means UTC). Only ASCII
    /// digits count (other scripts' digits are refused), and every field must be in range.
    public static func parse(_ text: String) -> Date? {
        let pattern =
            #/^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?$/#
        guard let m = text.wholeMatch(of: pattern),
            let year = Int32(m.1), let month = Int32(m.2), let day = Int32(m.3),
            let hour = Int32(m.4), let minute = Int32(m.5), let second = Int32(m.6),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        var seconds = Double(timegm(&parts))
        if let fraction = m.7 { seconds += Double("0" + fraction) ?? 0 }
        if let zone = m.8, zone != "Z" {
            let digits = zone.filter { $0 >= "0" && $0 <= "9" }
            guard let hours = Double(digits.prefix(2)), let minutes = Double(digits.suffix(2)), hours < 24, minutes < 60
            else { return nil }
            let offset = (hours * 3600 + minutes * 60) * (zone.hasPrefix("-") ? -1 : 1)
            seconds -= offset
        }
        return Date(timeIntervalSince1970: seconds)
    }
}

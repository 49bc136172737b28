import AMQP
/// Durations as people write them in the configuration: `"30s"`, `"5m"`, `"1h"`, `"1d"`, combined (`"1h30m"`),
/// or a bare number of seconds.
public enum DurationText {
    private static let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]

    /// Seconds in `text`, or nil when it is not a duration (`"5 minutes"`, `"m"`, `""`).
    public static func seconds(in text: String) -> Double? {
        let trimmed = text.trimmingWhitespace()
        if let plain = Double(trimmed), plain.isFinite { return plain }
        var total = 0.0
        var number = ""
        for character in trimmed {
            if character.isNumber || character == "." {
                number.append(character)
            } else if let unit = units[character], let value = Double(number) {
                total += value * unit
                number = ""
            } else {
                return nil
            }
        }
        return number.isEmpty && !trimmed.isEmpty ? total : nil
    }

    /// `90` → `"1m30s"`, `3600` → `"1h"`.
    public static func format(seconds: Int) -> String {
        guard seconds > 0 else { return "\(seconds)s" }
        var rest = seconds
        var text = ""
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
            text += "\(rest / size)\(unit)"
            rest %= size
        }
        return text
    }
}

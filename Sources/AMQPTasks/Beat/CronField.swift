/// One field of a cron expression (minute, hour, day of month, month or day of week): the values it allows.
///
/// Standard cron syntax: `*`, a value, a range `a-b`, a step `*/s`, `a-b/s` or `a/s` (from `a` to the field's
/// maximum), and comma-separated lists of these; months and days of the week also by their three-letter English
/// names (`jan`, `mon`…, any case). For days of the week, 0 and 7 are both Sunday.
struct CronField: Sendable, Hashable {
    /// The allowed values, ascending.
    let values: [Int]
    /// False when the field begins with `*` (cron's rule for combining day of month and day of week).
    let restricted: Bool

    /// What a field may hold.
    struct Kind: Sendable {
        let name: String
        let range: ClosedRange<Int>
        let names: [String]
        /// The first name's value (1 for months, 0 for days of the week).
        let firstNameValue: Int

        static let minute = Kind(name: "minute", range: 0...59, names: [], firstNameValue: 0)
        static let hour = Kind(name: "hour", range: 0...23, names: [], firstNameValue: 0)
        static let dayOfMonth = Kind(name: "day of month", range: 1...31, names: [], firstNameValue: 1)
        static let month = Kind(
            name: "month", range: 1...12,
            names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
            firstNameValue: 1)
        /// 0–7 on input (7 is Sunday again), stored as 0–6.
        static let dayOfWeek = Kind(
            name: "day of week", range: 0...7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
            firstNameValue: 0)
    }

    /// Parses `text` as a field of `kind`; throws a message saying what is wrong.
    init(_ text: String, kind: Kind) throws(CronError) {
        guard !text.isEmpty else { throw CronError("the \(kind.name) field is empty") }
        var allowed = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            allowed.formUnion(try Self.parseItem(String(item), kind: kind, field: text))
        }
        if kind == .dayOfWeek, allowed.remove(7) != nil { allowed.insert(0) }
        values = allowed.sorted()
        restricted = !text.hasPrefix("*")
    }

    func contains(_ value: Int) -> Bool { values.contains(value) }

    private static func parseItem(_ item: String, kind: Kind, field: String) throws(CronError) -> [Int] {
        guard !item.isEmpty else { throw CronError("the \(kind.name) field '\(field)' has an empty list item") }
        let parts = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2 else { throw CronError("'\(item)' in the \(kind.name) field has more than one '/'") }
        var step = 1
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), parsed >= 1 else {
                throw CronError("the step in '\(item)' (\(kind.name)) must be a whole number ≥ 1")
            }
            step = parsed
        }
        let base = parts[0]
        let low: Int
        let high: Int
        if base == "*" {
            (low, high) = (kind.range.lowerBound, kind == .dayOfWeek ? 6 : kind.range.upperBound)
        } else if let dash = base.firstIndex(of: "-") {
            low = try value(String(base[..<dash]), kind: kind, item: item)
            high = try value(String(base[base.index(after: dash)...]), kind: kind, item: item)
            guard low <= high else {
                throw CronError("the range '\(base)' (\(kind.name)) runs backwards; write it from low to high")
            }
        } else {
            low = try value(base, kind: kind, item: item)
            // `a/s` means from a to the end, as in Vixie cron; a lone value is just itself.
            high = parts.count == 2 ? (kind == .dayOfWeek ? 6 : kind.range.upperBound) : low
        }
        return Array(stride(from: low, through: high, by: step))
    }

    private static func value(_ text: String, kind: Kind, item: String) throws(CronError) -> Int {
        if let number = Int(text) {
            guard kind.range.contains(number) else {
                throw CronError(
                    "\(number) in '\(item)' is outside the \(kind.name) range \(kind.range.lowerBound)-\(kind.range.upperBound)")
            }
            return number
        }
        if let index = kind.names.firstIndex(of: text.lowercased()) { return index + kind.firstNameValue }
        let hint = kind.names.isEmpty ? "a number" : "a number or a name (\(kind.names.joined(separator: ", ")))"
        throw CronError("'\(text)' in the \(kind.name) field is not \(hint)")
    }
}

extension CronField.Kind: Equatable {
    static func == (a: Self, b: Self) -> Bool { a.name == b.name }
}

/// A value read from a TOML 1.0 document: what `TOMLParser` produces.
///
/// Dates and times keep the text as written next to their parsed parts (`TOMLDateTime`).
enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    /// `1979-05-27T07:32:00Z`, `1979-05-27 00:32:00.999-07:00`
    case offsetDateTime(TOMLDateTime)
    /// `1979-05-27T07:32:00`
    case localDateTime(TOMLDateTime)
    /// `1979-05-27`
    case localDate(TOMLDateTime)
    /// `07:32:00.5`
    case localTime(TOMLDateTime)
    case array([TOMLValue])
    case table(TOMLTable)
}

extension TOMLValue {
    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer, when it fits an `Int` (always, on 64-bit Linux).
    var int: Int? {
        if case .integer(let value) = self { return Int(exactly: value) }
        return nil
    }

    /// The float; nil for an integer (as TOMLKit did: callers that take both ask `int` first).
    var double: Double? {
        if case .float(let value) = self { return value }
        return nil
    }

    var bool: Bool? {
        if case .boolean(let value) = self { return value }
        return nil
    }

    var array: [TOMLValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    var table: TOMLTable? {
        if case .table(let value) = self { return value }
        return nil
    }

    /// A date, a time, or both.
    var dateTime: TOMLDateTime? {
        switch self {
        case .offsetDateTime(let value), .localDateTime(let value), .localDate(let value), .localTime(let value): value
        default: nil
        }
    }

    /// The kind of value in words, for errors ("expected a string, got integer 1").
    var type: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .float: "floating-point number"
        case .boolean: "bool"
        case .offsetDateTime, .localDateTime: "date-time"
        case .localDate: "date"
        case .localTime: "time"
        case .array: "array"
        case .table: "table"
        }
    }

    /// The value as errors show it: strings in quotes (unescaped), numbers as Swift prints them, dates as written,
    /// arrays and tables inline.
    var debugDescription: String {
        switch self {
        case .string(let value): "\"\(value)\""
        case .integer(let value): String(value)
        case .float(let value): String(value)
        case .boolean(let value): String(value)
        case .offsetDateTime(let value), .localDateTime(let value), .localDate(let value), .localTime(let value):
            value.text
        case .array(let values): "[" + values.map(\.debugDescription).joined(separator: ", ") + "]"
        case .table(let table):
            table.isEmpty
                ? "{}"
                : "{ " + table.keysInFileOrder.map { "\($0) = \(table[$0]!.debugDescription)" }.joined(separator: ", ") + " }"
        }
    }
}

/// Reads the token of a number or date (`42`, `0xff`, `6.02e23`, `-inf`, `1979-05-27T07:32:00Z`, `07:32:00`).
enum TOMLScalar {
    /// Why a token is no number or date; the parser adds its line and column.
    struct Problem: Error {
        let message: String
    }

    static func parse(_ token: [UInt8]) throws(Problem) -> TOMLValue {
        let text = String(decoding: token, as: UTF8.self)
        switch text {
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan": return .float(.nan)
        case "-nan": return .float(-.nan)
        default: break
        }
        guard let first = token.first, isDigit(first) || [UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ".")].contains(first)
        else {
            throw Problem(
                message: "'\(text)' is not a value: a string needs quotes (\"\(text)\"); true and false are lowercase")
        }
        if isDate(Array(token.prefix(10))) { return try TOMLDateTimeReader.dateTime(token, text: text) }
        if token.count > 2, token[2] == UInt8(ascii: ":") { return try TOMLDateTimeReader.localTime(token, text: text) }
        if token.count > 1, token[0] == UInt8(ascii: "0"),
            let radix: Int64 =
                switch token[1] {
                case UInt8(ascii: "x"): 16
                case UInt8(ascii: "o"): 8
                case UInt8(ascii: "b"): 2
                default: nil
                }
        {
            return .integer(try prefixedInteger(Array(token.dropFirst(2)), radix: radix, text: text))
        }
        if token.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            return .float(try float(token, text: text))
        }
        return .integer(try decimalInteger(token, text: text))
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// `YYYY-MM-DD` exactly.
    static func isDate(_ token: [UInt8]) -> Bool {
        token.count == 10 && token[4] == UInt8(ascii: "-") && token[7] == UInt8(ascii: "-")
            && [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy { isDigit(token[$0]) }
    }

    /// Digits (of `radix`) with single underscores between them; nil when that shape is broken.
    private static func digits(_ bytes: some Collection<UInt8>, radix: Int64) -> [Int64]? {
        var values: [Int64] = []
        var previousWasDigit = false
        for byte in bytes {
            if byte == UInt8(ascii: "_") {
                guard previousWasDigit else { return nil }
                previousWasDigit = false
                continue
            }
            guard let digit = TOMLParser.hexDigit(byte).map(Int64.init), digit < radix else { return nil }
            values.append(digit)
            previousWasDigit = true
        }
        return previousWasDigit ? values : nil
    }

    private static func decimalInteger(_ token: [UInt8], text: String) throws(Problem) -> Int64 {
        let negative = token.first == UInt8(ascii: "-")
        let body = token.first == UInt8(ascii: "-") || token.first == UInt8(ascii: "+") ? token.dropFirst() : token[...]
        guard let values = digits(body, radix: 10) else {
            throw Problem(message: "'\(text)' is not a value: expected a number (digits, with single underscores between them), a date, true or false, or a quoted string")
        }
        guard values.count == 1 || values[0] != 0 else {
            throw Problem(message: "the integer \(text) starts with a zero; TOML integers have no leading zeros (0o17 is octal)")
        }
        var result: Int64 = 0
        for digit in values {
            let (shifted, overflowA) = result.multipliedReportingOverflow(by: 10)
            let (next, overflowB) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflowA, !overflowB else {
                throw Problem(message: "the integer \(text) does not fit in 64 bits (from -9223372036854775808 to 9223372036854775807)")
            }
            result = next
        }
        return result
    }

    private static func prefixedInteger(_ body: [UInt8], radix: Int64, text: String) throws(Problem) -> Int64 {
        let name = radix == 16 ? "hexadecimal" : radix == 8 ? "octal" : "binary"
        guard let values = digits(body, radix: radix) else {
            throw Problem(message: "'\(text)' is not a \(name) integer: expected \(name) digits with single underscores between them (and no sign)")
        }
        var result: Int64 = 0
        for digit in values {
            let (shifted, overflowA) = result.multipliedReportingOverflow(by: radix)
            let (next, overflowB) = shifted.addingReportingOverflow(digit)
            guard !overflowA, !overflowB else {
                throw Problem(message: "the integer \(text) does not fit in 64 bits (at most 9223372036854775807)")
            }
            result = next
        }
        return result
    }

    /// `[+-] int [. digits] [e [+-] digits]`, with a fraction or an exponent or both.
    private static func float(_ token: [UInt8], text: String) throws(Problem) -> Double {
        let bad = Problem(
            message: "'\(text)' is not a float: expected digits, then '.' and digits and/or an exponent (e.g. 3.14, 1e6, 6.02e+23), with underscores only between digits")
        var body = token[...]
        if body.first == UInt8(ascii: "-") || body.first == UInt8(ascii: "+") { body = body.dropFirst() }
        let exponentAt = body.firstIndex { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        let mantissa = exponentAt.map { body[..<$0] } ?? body
        let dot = mantissa.firstIndex(of: UInt8(ascii: "."))
        let integerPart = dot.map { mantissa[..<$0] } ?? mantissa
        guard let whole = digits(integerPart, radix: 10) else { throw bad }
        guard whole.count == 1 || whole[0] != 0 else {
            throw Problem(message: "the float \(text) starts with a zero; TOML numbers have no leading zeros")
        }
        if let dot, digits(mantissa[mantissa.index(after: dot)...], radix: 10) == nil { throw bad }
        if let exponentAt {
            var exponent = body[body.index(after: exponentAt)...]
            if exponent.first == UInt8(ascii: "-") || exponent.first == UInt8(ascii: "+") { exponent = exponent.dropFirst() }
            if digits(exponent, radix: 10) == nil { throw bad }
        }
        let plain = String(decoding: token.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        guard let value = Double(plain) else { throw bad }
        guard value.isFinite else {
            throw Problem(message: "the float \(text) is too large for 64 bits; write inf for infinity")
        }
        return value
    }
}

/// Rejects the TOML that the parser inside TOMLKit (toml++ 3.4) cannot be given safely.
///
/// toml++ reads a table header's name assuming the header starts with one, and an array element assuming it is not
/// a `}`: for `[[,x]]` or `a = [1, }` its debug build stops the process on an assertion, and its release build has
/// undefined behaviour (the assertion becomes an assumption the optimizer relies on). The fuzzer (`Tests/Fuzz`)
/// found both. This scan finds them first and reports them as a syntax error with the line, as the parser reports
/// its own. It follows strings (basic, literal, multi-line),
/// comments, and arrays and inline tables spread over lines, so a `[` that opens a value is never taken for a header.
enum TOMLPreflight {
    struct Problem: Error {
        let line: Int
        let column: Int
        let message: String
    }

    static func check(_ text: String) -> Problem? {
        let bytes = Array(text.utf8)
        var index = 0
        var line = 1
        var lineStart = 0
        var open: [UInt8] = []  // the [ and { of values (arrays, inline tables) still open, innermost last
        var atLineStart = true
        // The parser skips a UTF-8 byte order mark, so a header right after it is still at the start of a line.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }

        func peek(_ offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }
        func newline() {
            line += 1
            lineStart = index + 1
            atLineStart = true
        }
        /// Skips a string that starts at `index` (the opening quote); leaves `index` after its end.
        func skipString(quote: UInt8) {
            let multiLine = peek(1) == quote && peek(2) == quote
            index += multiLine ? 3 : 1
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\\") && quote == UInt8(ascii: "\"") {
                    if peek(1) == UInt8(ascii: "\n") { index += 1; newline() }
                    index += 2
                    continue
                }
                if byte == UInt8(ascii: "\n") {
                    if !multiLine { return }  // unterminated: the parser reports it
                    newline()
                    atLineStart = false
                } else if byte == quote && (!multiLine || (peek(1) == quote && peek(2) == quote)) {
                    index += multiLine ? 3 : 1
                    // A closing """ may be followed by up to two more quotes that belong to the string.
                    while multiLine, index < bytes.count, bytes[index] == quote { index += 1 }
                    return
                }
                index += 1
            }
        }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\n"):
                newline()
                index += 1
                continue
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
                continue
            case UInt8(ascii: "#"):
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                atLineStart = false
                skipString(quote: byte)
                continue
            case UInt8(ascii: "[") where atLineStart && open.isEmpty:
                // A table header: after "[" or "[[" and blanks, a key must start.
                var cursor = index + 1
                if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "[") { cursor += 1 }
                while cursor < bytes.count, bytes[cursor] == UInt8(ascii: " ") || bytes[cursor] == UInt8(ascii: "\t") {
                    cursor += 1
                }
                if cursor < bytes.count, !startsKey(bytes[cursor]) {
                    return Problem(
                        line: line, column: cursor - lineStart + 1,
                        message: "a table header must start with a key name, found '\(Character(Unicode.Scalar(bytes[cursor])))'")
                }
                atLineStart = false
                index = cursor
                // The rest of the header is a key and closing brackets, never a value.
                while index < bytes.count, bytes[index] != UInt8(ascii: "]"), bytes[index] != UInt8(ascii: "\n") {
                    if bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") {
                        skipString(quote: bytes[index])
                    } else {
                        index += 1
                    }
                }
                while index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1 }
                continue
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                open.append(byte)
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                // toml++ reads a "}" where an array expects a value as the start of one, and asserts.
                if byte == UInt8(ascii: "}"), open.last == UInt8(ascii: "[") {
                    return Problem(
                        line: line, column: index - lineStart + 1,
                        message: "expected a value or ']' in the array, found '}'")
                }
                _ = open.popLast()
            default:
                break
            }
            atLineStart = false
            index += 1
        }
        return nil
    }

    /// A bare key character, a quote, or "]" (an empty header, which the parser reports itself).
    private static func startsKey(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "\""),
            UInt8(ascii: "'"), UInt8(ascii: "]"):
            return true
        default:
            return false
        }
    }
}

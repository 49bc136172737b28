/// The four kinds of TOML string: basic "…", literal '…', and their multi-line forms """…""" and '''…'''.
extension TOMLParser {
    /// A string value of any kind, at its opening quote.
    mutating func stringValue() throws(TOMLParseError) -> String {
        if cursor.looking(at: "\"\"\"") { return try multiLineString(quote: UInt8(ascii: "\"")) }
        if cursor.looking(at: "'''") { return try multiLineString(quote: UInt8(ascii: "'")) }
        return cursor.peek(is: "\"") ? try basicString() : try literalString()
    }

    /// "…" with escapes, on one line.
    mutating func basicString() throws(TOMLParseError) -> String {
        cursor.advance()
        var bytes: [UInt8] = []
        while true {
            guard let byte = cursor.peek(), byte != 0x0A, !cursor.atNewline else {
                throw cursor.error("this string is not closed: a \"…\" string must end with \" on the same line")
            }
            switch byte {
            case UInt8(ascii: "\""):
                cursor.advance()
                return String(decoding: bytes, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try escape(into: &bytes)
            default:
                try refuseControl(byte, in: "a string")
                bytes.append(byte)
                cursor.advance()
            }
        }
    }

    /// '…' as written, on one line.
    mutating func literalString() throws(TOMLParseError) -> String {
        cursor.advance()
        var bytes: [UInt8] = []
        while true {
            guard let byte = cursor.peek(), byte != 0x0A, !cursor.atNewline else {
                throw cursor.error("this string is not closed: a '…' string must end with ' on the same line")
            }
            if byte == UInt8(ascii: "'") {
                cursor.advance()
                return String(decoding: bytes, as: UTF8.self)
            }
            try refuseControl(byte, in: "a literal string")
            bytes.append(byte)
            cursor.advance()
        }
    }

    /// """…""" (with escapes and line-ending backslashes) or '''…''' (as written); a newline right after the opening
    /// quotes is not part of the string; CRLF becomes LF.
    mutating func multiLineString(quote: UInt8) throws(TOMLParseError) -> String {
        let basic = quote == UInt8(ascii: "\"")
        let startLine = cursor.line
        cursor.advance(3)
        _ = cursor.skipNewline()
        var bytes: [UInt8] = []
        while true {
            guard let byte = cursor.peek() else {
                let quotes = basic ? "\"\"\"" : "'''"
                throw cursor.error("the multi-line string opened on line \(startLine) is not closed with \(quotes)")
            }
            if byte == quote {
                var run = 0
                while cursor.peek(run) == quote { run += 1 }
                if run >= 3 {
                    // Up to two quotes just before the closing three belong to the string.
                    guard run <= 5 else {
                        cursor.advance(5)
                        throw cursor.error("too many quotes: a multi-line string ends with three, and holds at most two before them")
                    }
                    bytes.append(contentsOf: repeatElement(quote, count: run - 3))
                    cursor.advance(run)
                    return String(decoding: bytes, as: UTF8.self)
                }
                bytes.append(contentsOf: repeatElement(quote, count: run))
                cursor.advance(run)
            } else if cursor.skipNewline() {
                bytes.append(0x0A)
            } else if basic && byte == UInt8(ascii: "\\") {
                if try lineEndingBackslash() { continue }
                try escape(into: &bytes)
            } else {
                try refuseControl(byte, in: basic ? "a multi-line string" : "a multi-line literal string")
                bytes.append(byte)
                cursor.advance()
            }
        }
    }

    /// A `\` followed by blanks up to the end of the line: skips it and all blanks and newlines after it.
    private mutating func lineEndingBackslash() throws(TOMLParseError) -> Bool {
        var offset = 1
        while let byte = cursor.peek(offset), byte == 0x20 || byte == 0x09 { offset += 1 }
        guard cursor.peek(offset) == 0x0A || (cursor.peek(offset) == 0x0D && cursor.peek(offset + 1) == 0x0A) else {
            return false
        }
        cursor.advance(offset)
        while true {
            cursor.skipBlanks()
            if !cursor.skipNewline() { return true }
        }
    }

    /// One escape sequence at the `\`.
    private mutating func escape(into bytes: inout [UInt8]) throws(TOMLParseError) {
        let line = cursor.line, column = cursor.column
        func failure(_ message: String) -> TOMLParseError { TOMLParseError(line: line, column: column, message: message) }
        cursor.advance()
        guard let letter = cursor.peek() else { throw cursor.error("the file ends inside an escape sequence") }
        let simple: UInt8? =
            switch letter {
            case UInt8(ascii: "b"): 0x08
            case UInt8(ascii: "t"): 0x09
            case UInt8(ascii: "n"): 0x0A
            case UInt8(ascii: "f"): 0x0C
            case UInt8(ascii: "r"): 0x0D
            case UInt8(ascii: "\""): UInt8(ascii: "\"")
            case UInt8(ascii: "\\"): UInt8(ascii: "\\")
            default: nil
            }
        if let simple {
            bytes.append(simple)
            cursor.advance()
            return
        }
        let digits: Int
        switch letter {
        case UInt8(ascii: "u"): digits = 4
        case UInt8(ascii: "U"): digits = 8
        default:
            // `found` quotes a character ('x'), or names a line end or a control character.
            let found = cursor.found
            let escape = found.hasPrefix("'") ? "\\\(found.dropFirst().dropLast())" : "'\\' followed by \(found)"
            throw failure(
                "invalid escape \(escape) in a string; TOML 1.0 has \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX and \\UXXXXXXXX")
        }
        cursor.advance()
        var value: UInt32 = 0
        for offset in 0..<digits {
            guard let byte = cursor.peek(offset), let digit = Self.hexDigit(byte) else {
                throw failure("\\\(Character(Unicode.Scalar(letter))) needs exactly \(digits) hexadecimal digits")
            }
            value = value << 4 | UInt32(digit)
        }
        guard let scalar = Unicode.Scalar(value) else {
            throw failure(
                "\(TOMLCursor.unicodeName(value)) is not a Unicode scalar value (a surrogate, or above U+10FFFF), so no string can hold it")
        }
        bytes.append(contentsOf: String(Character(scalar)).utf8)
        cursor.advance(digits)
    }

    static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Control characters other than tab must be escaped (a lone CR too).
    private func refuseControl(_ byte: UInt8, in place: String) throws(TOMLParseError) {
        if byte < 0x20 && byte != 0x09 || byte == 0x7F {
            let hint = place.contains("literal") || byte == 0x0D ? "" : "; write it as an escape such as \\u\(String(format4: byte))"
            throw cursor.error(TOMLCursor.controlCharacterMessage(byte, in: place) + hint)
        }
    }
}

extension String {
    /// Four hexadecimal digits, for `\uXXXX` in messages.
    fileprivate init(format4 byte: UInt8) {
        let hex = String(byte, radix: 16, uppercase: true)
        self = String(repeating: "0", count: 4 - hex.count) + hex
    }
}

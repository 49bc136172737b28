/// Values: strings, booleans, arrays, inline tables, and the token that is a number or a date.
extension TOMLParser {
    /// The value at the cursor.
    mutating func value() throws(TOMLParseError) -> TOMLValue {
        guard let byte = cursor.peek(), !cursor.atNewline else {
            throw cursor.error("expected a value, found \(cursor.found)")
        }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            return .string(try stringValue())
        case UInt8(ascii: "["):
            return try nested { (parser: inout TOMLParser) throws(TOMLParseError) in try parser.array() }
        case UInt8(ascii: "{"):
            return try nested { (parser: inout TOMLParser) throws(TOMLParseError) in try parser.inlineTable() }
        default:
            break
        }
        if cursor.looking(at: "true") {
            cursor.advance(4)
            return .boolean(true)
        }
        if cursor.looking(at: "false") {
            cursor.advance(5)
            return .boolean(false)
        }
        let line = cursor.line, column = cursor.column
        let token = scalarToken()
        guard !token.isEmpty else {
            throw cursor.error("expected a value (a string, number, true, false, date, [array] or {table}), found \(cursor.found)")
        }
        do {
            return try TOMLScalar.parse(token)
        } catch let problem {
            throw TOMLParseError(line: line, column: column, message: problem.message)
        }
    }

    /// Runs `body` one level deeper, refusing nesting beyond `maximumDepth`.
    private mutating func nested(
        _ body: (inout TOMLParser) throws(TOMLParseError) -> TOMLValue
    ) throws(TOMLParseError) -> TOMLValue {
        guard depth < Self.maximumDepth else {
            throw cursor.error("arrays and inline tables nest more than \(Self.maximumDepth) deep")
        }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    /// The bytes of a number, boolean-like word or date: letters, digits and `_ + - . :`, and the space between a
    /// date and its time (`1979-05-27 07:32:00`).
    private mutating func scalarToken() -> [UInt8] {
        func isTokenByte(_ byte: UInt8) -> Bool {
            Self.isBareKeyByte(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
        }
        let start = cursor.index
        while let byte = cursor.peek(), isTokenByte(byte) { cursor.advance() }
        var token = Array(cursor.bytes[start..<cursor.index])
        if TOMLScalar.isDate(token), cursor.peek() == UInt8(ascii: " "),
            let hour = cursor.peek(1), let hour2 = cursor.peek(2), cursor.peek(3) == UInt8(ascii: ":"),
            TOMLScalar.isDigit(hour), TOMLScalar.isDigit(hour2)
        {
            cursor.advance()
            token.append(UInt8(ascii: " "))
            let timeStart = cursor.index
            while let byte = cursor.peek(), isTokenByte(byte) { cursor.advance() }
            token += cursor.bytes[timeStart..<cursor.index]
        }
        return token
    }

    /// `[ value, value, ]`: any types, over several lines, with comments; a trailing comma is allowed.
    private mutating func array() throws(TOMLParseError) -> TOMLValue {
        cursor.advance()
        var elements: [TOMLValue] = []
        while true {
            try cursor.skipBlanksCommentsAndNewlines()
            if cursor.peek(is: "]") {
                cursor.advance()
                return .array(elements)
            }
            if cursor.peek(is: "}") || cursor.peek(is: ",") {
                throw cursor.error("expected a value or ']' in the array, found \(cursor.found)")
            }
            elements.append(try value())
            try cursor.skipBlanksCommentsAndNewlines()
            if cursor.peek(is: ",") {
                cursor.advance()
            } else if !cursor.peek(is: "]") {
                throw cursor.error("expected ',' or ']' after an array element, found \(cursor.found)")
            }
        }
    }

    /// `{ key = value, … }` on one line, without a trailing comma; complete as written.
    private mutating func inlineTable() throws(TOMLParseError) -> TOMLValue {
        cursor.advance()
        let table = TOMLTableBuilder(origin: .dottedKeys)
        cursor.skipBlanks()
        if cursor.peek(is: "}") {
            cursor.advance()
            return .table(table.build())
        }
        while true {
            cursor.skipBlanks()
            if cursor.atNewline || cursor.peek(is: "#") {
                throw cursor.error("an inline table { … } must be on one line, found \(cursor.peek(is: "#") ? "a comment" : "the end of the line")")
            }
            if cursor.peek(is: "}") {
                throw cursor.error("an inline table cannot end with a comma")
            }
            try keyValue(into: table)
            cursor.skipBlanks()
            if cursor.peek(is: "}") {
                cursor.advance()
                return .table(table.build())
            }
            guard cursor.peek(is: ",") else {
                if cursor.atNewline || cursor.peek(is: "#") {
                    throw cursor.error("an inline table { … } must be on one line, found \(cursor.peek(is: "#") ? "a comment" : "the end of the line")")
                }
                throw cursor.error("expected ',' or '}' in the inline table, found \(cursor.found)")
            }
            cursor.advance()
        }
    }
}

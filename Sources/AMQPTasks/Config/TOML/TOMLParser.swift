/// Reads a TOML 1.0 document into a `TOMLTable`, refusing anything the specification does not allow with the line,
/// column and reason (https://toml.io/en/v1.0.0). Pure Swift: no Foundation, no C++.
struct TOMLParser {
    var cursor: TOMLCursor
    /// How deeply tables (header and dotted key parts), arrays and inline tables nest at the cursor.
    var depth = 0
    /// Deeper nesting is refused, so a hostile file cannot exhaust the stack (here, or where the tree is built,
    /// compared or freed, all recursively).
    static let maximumDepth = 128

    /// The document's top-level table, or the first problem in it.
    static func parse(_ text: String) throws(TOMLParseError) -> TOMLTable {
        var parser = TOMLParser(cursor: TOMLCursor(text))
        return try parser.document()
    }

    private mutating func document() throws(TOMLParseError) -> TOMLTable {
        let root = TOMLTableBuilder(origin: .root)
        var current = root
        while true {
            cursor.skipBlanks()
            if cursor.atEnd { break }
            if cursor.skipNewline() { continue }
            if cursor.peek(is: "#") {
                try cursor.skipComment()
            } else if cursor.peek(is: "[") {
                current = try header(root)
            } else {
                try keyValue(into: current)
            }
            try endOfLine(after: "the value")
        }
        return root.build()
    }

    /// After a key/value or a header: blanks, maybe a comment, then a newline or the end of the file.
    private mutating func endOfLine(after what: String) throws(TOMLParseError) {
        cursor.skipBlanks()
        try cursor.skipComment()
        guard cursor.atEnd || cursor.skipNewline() else {
            if cursor.peek() == 0x0D { throw cursor.error(TOMLCursor.controlCharacterMessage(0x0D, in: "the document")) }
            throw cursor.error("expected the end of the line after \(what), found \(cursor.found)")
        }
    }

    /// `[a.b]` or `[[a.b]]`: the table that the following keys go into.
    private mutating func header(_ root: TOMLTableBuilder) throws(TOMLParseError) -> TOMLTableBuilder {
        cursor.advance()
        let isArray = cursor.peek(is: "[")
        if isArray { cursor.advance() }
        cursor.skipBlanks()
        guard let first = cursor.peek(), Self.startsKey(first) else {
            throw cursor.error("a table header must start with a key name, found \(cursor.found)")
        }
        let keys = try key()
        // Each part is a table one level deeper: a header of thousands of parts would recurse that deep later.
        guard keys.count <= Self.maximumDepth else {
            throw keys[Self.maximumDepth].error("tables nest more than \(Self.maximumDepth) deep (a header of \(keys.count) keys)")
        }
        if isArray {
            guard cursor.looking(at: "]]") else {
                throw cursor.error("expected ']]' to close the array-of-tables header, found \(cursor.found)")
            }
            cursor.advance(2)
        } else {
            guard cursor.peek(is: "]") else {
                throw cursor.error("expected ']' to close the table header, found \(cursor.found)")
            }
            cursor.advance()
        }
        var table = root
        for part in keys.dropLast() { table = try table.headerPathTable(part) }
        // The values under this header sit as deep as its keys.
        depth = keys.count
        return isArray ? try table.appendArrayElement(keys[keys.count - 1]) : try table.defineTable(keys[keys.count - 1])
    }

    /// `key = value` into `table` (dotted keys make or extend tables inside it).
    mutating func keyValue(into table: TOMLTableBuilder) throws(TOMLParseError) {
        let keys = try key()
        guard cursor.peek(is: "=") else {
            throw cursor.error("expected '=' after the key '\(keys.map(\.name).joined(separator: "."))', found \(cursor.found)")
        }
        cursor.advance()
        cursor.skipBlanks()
        // Each dotted part but the last is a table one level deeper, and the value (an array or an inline table)
        // nests from there.
        let outer = depth
        defer { depth = outer }
        depth += keys.count - 1
        guard depth <= Self.maximumDepth else {
            throw keys[Self.maximumDepth - outer].error(
                "tables nest more than \(Self.maximumDepth) deep (a dotted key of \(keys.count) parts)")
        }
        let value = try value()
        var target = table
        for part in keys.dropLast() { target = try target.dottedTable(part) }
        try target.assign(keys[keys.count - 1], value)
    }

    /// A bare key character or a quote.
    static func startsKey(_ byte: UInt8) -> Bool {
        isBareKeyByte(byte) || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")
    }

    static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    /// A key: bare or quoted parts joined by dots (blanks allowed around the dots); the blanks after it are skipped.
    mutating func key() throws(TOMLParseError) -> [TOMLKey] {
        var parts: [TOMLKey] = []
        while true {
            cursor.skipBlanks()
            let line = cursor.line, column = cursor.column
            let name: String
            if cursor.peek(is: "\"") {
                if cursor.looking(at: "\"\"\"") { throw cursor.error("a key cannot be a multi-line string") }
                name = try basicString()
            } else if cursor.peek(is: "'") {
                if cursor.looking(at: "'''") { throw cursor.error("a key cannot be a multi-line string") }
                name = try literalString()
            } else {
                let start = cursor.index
                while let byte = cursor.peek(), Self.isBareKeyByte(byte) { cursor.advance() }
                guard cursor.index > start else {
                    throw cursor.error("expected a key (letters, digits, '_', '-', or a quoted string), found \(cursor.found)")
                }
                name = String(decoding: cursor.bytes[start..<cursor.index], as: UTF8.self)
            }
            parts.append(TOMLKey(name: name, line: line, column: column))
            cursor.skipBlanks()
            guard cursor.peek(is: ".") else { return parts }
            cursor.advance()
        }
    }
}

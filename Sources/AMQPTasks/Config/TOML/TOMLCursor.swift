/// A position in a TOML document's bytes, counting lines and columns as it moves.
struct TOMLCursor {
    let bytes: [UInt8]
    private(set) var index = 0
    private(set) var line = 1
    private var lineStart = 0

    init(_ text: String) {
        bytes = Array(text.utf8)
        // A UTF-8 byte order mark is not part of the document.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            index = 3
            lineStart = 3
        }
    }

    var atEnd: Bool { index >= bytes.count }

    /// 1-based column of the next byte.
    var column: Int { index - lineStart + 1 }

    /// The byte `offset` bytes ahead, nil past the end.
    func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    func peek(is byte: Character) -> Bool { peek() == byte.asciiValue }

    /// Whether the next bytes are `text`.
    func looking(at text: String) -> Bool {
        var offset = 0
        for byte in text.utf8 {
            guard peek(offset) == byte else { return false }
            offset += 1
        }
        return true
    }

    /// Moves past one byte, counting a line feed as the start of a new line.
    mutating func advance(_ count: Int = 1) {
        for _ in 0..<count where index < bytes.count {
            if bytes[index] == 0x0A {
                line += 1
                lineStart = index + 1
            }
            index += 1
        }
    }

    /// Skips spaces and tabs.
    mutating func skipBlanks() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 { advance() }
    }

    /// Whether a newline (LF or CRLF) is next.
    var atNewline: Bool { peek() == 0x0A || (peek() == 0x0D && peek(1) == 0x0A) }

    /// Moves past a newline if one is next; says whether it did.
    mutating func skipNewline() -> Bool {
        if peek() == 0x0A {
            advance()
            return true
        }
        if peek() == 0x0D && peek(1) == 0x0A {
            advance(2)
            return true
        }
        return false
    }

    /// Moves past a `#` comment up to (not over) the end of its line, refusing control characters in it.
    mutating func skipComment() throws(TOMLParseError) {
        guard peek(is: "#") else { return }
        advance()
        while let byte = peek(), !atNewline {
            if byte < 0x20 && byte != 0x09 || byte == 0x7F {
                throw error(Self.controlCharacterMessage(byte, in: "a comment"))
            }
            advance()
        }
    }

    /// Skips blanks, comments and newlines (between array elements).
    mutating func skipBlanksCommentsAndNewlines() throws(TOMLParseError) {
        while true {
            skipBlanks()
            try skipComment()
            if !skipNewline() { return }
        }
    }

    /// An error at the cursor.
    func error(_ message: String) -> TOMLParseError {
        TOMLParseError(line: line, column: column, message: message)
    }

    /// The character at the cursor, for messages: "found 'x'".
    var found: String {
        guard let byte = peek() else { return "the end of the file" }
        if byte == 0x0A || byte == 0x0D { return "the end of the line" }
        if byte < 0x20 || byte == 0x7F { return "control character \(Self.unicodeName(UInt32(byte)))" }
        // Decode the whole character at the cursor (up to 4 bytes of UTF-8).
        var end = index + 1
        while end < bytes.count, end < index + 4, bytes[end] & 0xC0 == 0x80 { end += 1 }
        return "'\(String(decoding: bytes[index..<end], as: UTF8.self))'"
    }

    static func unicodeName(_ value: UInt32) -> String {
        let hex = String(value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    static func controlCharacterMessage(_ byte: UInt8, in place: String) -> String {
        if byte == 0x0D { return "a carriage return must be followed by a line feed (in \(place))" }
        return "control character \(unicodeName(UInt32(byte))) is not allowed in \(place)"
    }
}

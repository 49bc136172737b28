import AMQP
import FoundationEssentials

/// Finds the line of each key in a TOML file's text, so errors about values (which the TOML tree holds without
/// positions) can still name the line.
///
/// It follows `[table]` and `[[array]]` headers (counting array elements) and `key = value` lines, with bare,
/// quoted and dotted keys. Keys inside inline tables are located at the line of the key that holds the table.
/// Paths are written as the errors show them: `queues[1].bindings`, `tasks."images.resize".command`.
struct SourceLocator {
    private var lines: [String: Int] = [:]
    private var order: [String: Int] = [:]

    init(text: String) {
        var prefix: [String] = []
        var arrayCounts: [String: Int] = [:]
        var position = 0
        // A byte order mark is not part of the first line; "\r\n" is one Character, so it is split on as well.
        let body = text.hasPrefix("\u{FEFF}") ? text.dropFirst() : text[...]
        for (index, rawLine) in body.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .enumerated()
        {
            let line = Self.stripComment(String(rawLine)).trimmingWhitespace()
            guard !line.isEmpty else { continue }
            let number = index + 1
            if line.hasPrefix("[[") {
                let keys = Self.splitKey(String(line.dropFirst(2).prefix { $0 != "]" }))
                let base = Self.path(keys)
                let element = arrayCounts[base, default: 0]
                arrayCounts[base] = element + 1
                prefix = keys
                prefix[prefix.count - 1] += "[\(element)]"
                record(Self.path(prefix), number, &position)
            } else if line.hasPrefix("[") {
                prefix = Self.splitKey(String(line.dropFirst().prefix { $0 != "]" }))
                record(Self.path(prefix), number, &position)
            } else if let equals = Self.assignment(line) {
                let keys = Self.splitKey(String(line[..<equals]))
                record(Self.path(prefix + keys), number, &position)
            }
        }
    }

    private mutating func record(_ path: String, _ line: Int, _ position: inout Int) {
        if lines[path] == nil {
            lines[path] = line
            order[path] = position
            position += 1
        }
    }

    /// The line of `path`, or of its nearest enclosing key that has one.
    func line(of path: String) -> Int? {
        var current = path
        while !current.isEmpty {
            if let line = lines[current] { return line }
            guard let cut = Self.lastSeparator(in: current) else { return nil }
            current = String(current[..<cut])
        }
        return nil
    }

    /// Position of `path` in the file, for keeping file order where `TOMLTable.keys` sorts them.
    func position(of path: String) -> Int { order[path] ?? Int.max }

    /// Formats a key path: bare keys joined by dots, others quoted.
    static func path(_ keys: [String]) -> String {
        keys.map(component).joined(separator: ".")
    }

    static func component(_ key: String) -> String {
        if key.hasSuffix("]"), let open = key.lastIndex(of: "[") {
            return component(String(key[..<open])) + key[open...]
        }
        let bare = !key.isEmpty && key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        return bare ? key : "\"\(key)\""
    }

    private static func lastSeparator(in path: String) -> String.Index? {
        var inQuotes = false
        var last: String.Index?
        for index in path.indices {
            let ch = path[index]
            if ch == "\"" { inQuotes.toggle() }
            if !inQuotes, ch == "." || ch == "[" { last = index }
        }
        return last
    }

    private static func stripComment(_ line: String) -> String {
        firstUnquoted("#", in: line).map { String(line[..<$0]) } ?? line
    }

    /// The index of the `=` of a `key = value` line, outside quotes.
    private static func assignment(_ line: String) -> String.Index? {
        firstUnquoted("=", in: line)
    }

    /// The first `target` outside '…' and "…" strings.
    private static func firstUnquoted(_ target: Character, in line: String) -> String.Index? {
        var inString: Character?
        for index in line.indices {
            let ch = line[index]
            if let quote = inString {
                if ch == quote { inString = nil }
            } else if ch == "\"" || ch == "'" {
                inString = ch
            } else if ch == target {
                return index
            }
        }
        return nil
    }

    /// Splits a (possibly dotted, possibly quoted) key into its parts.
    static func splitKey(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var inString: Character?
        for ch in text {
            if let quote = inString {
                if ch == quote { inString = nil } else { current.append(ch) }
            } else if ch == "\"" || ch == "'" {
                inString = ch
            } else if ch == "." {
                parts.append(current.trimmingWhitespace())
                current = ""
            } else {
                current.append(ch)
            }
        }
        parts.append(current.trimmingWhitespace())
        return parts
    }
}

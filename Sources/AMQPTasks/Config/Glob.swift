/// Glob patterns over dotted task names: `*` matches one dot-separated part (any run of characters but `.`), `**`
/// any number of parts, every other character itself; the whole name must match.
enum Glob {
    static func matches(_ pattern: String, _ name: String) -> Bool {
        let tokens = Token.parse(pattern)
        let name = Array(name)
        // matched[j]: the tokens so far match name[..<j]. One pass per token: O(pattern × name), no backtracking.
        var matched = [Bool](repeating: false, count: name.count + 1)
        matched[0] = true
        for token in tokens {
            var next = [Bool](repeating: false, count: name.count + 1)
            for j in 0...name.count {
                switch token {
                case .literal(let character):
                    next[j] = j > 0 && matched[j - 1] && name[j - 1] == character
                case .part:
                    next[j] = matched[j] || (j > 0 && next[j - 1] && name[j - 1] != ".")
                case .parts:
                    next[j] = matched[j] || (j > 0 && next[j - 1] && !Self.endsLine(name[j - 1]))
                }
            }
            matched = next
        }
        // As the regular expression's `$`: the end, or a line terminator ending the name.
        return matched[name.count] || (!name.isEmpty && Self.endsLine(name[name.count - 1]) && matched[name.count - 1])
    }

    /// What `**` does not cross: the line terminators of the regular expression (`.*`) it was before.
    private static func endsLine(_ character: Character) -> Bool {
        character.unicodeScalars.contains { ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains($0) }
    }

    private enum Token {
        case literal(Character)
        case part  // *
        case parts  // **

        static func parse(_ pattern: String) -> [Token] {
            var tokens: [Token] = []
            var index = pattern.startIndex
            while index < pattern.endIndex {
                let next = pattern.index(after: index)
                if pattern[index] == "*", next < pattern.endIndex, pattern[next] == "*" {
                    tokens.append(.parts)
                    index = pattern.index(after: next)
                    continue
                }
                tokens.append(pattern[index] == "*" ? .part : .literal(pattern[index]))
                index = next
            }
            return tokens
        }
    }
}

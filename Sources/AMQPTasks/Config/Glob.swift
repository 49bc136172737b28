/// Glob patterns over dotted task names: `*` matches one dot-separated part (any run of characters but `.`), `**`
/// any number of parts, every other character itself; the whole name must match. Compared scalar by scalar (`é`
/// written precomposed does not match `é` written as `e` and an accent), as the regular expression it replaced.
enum Glob {
    static func matches(_ pattern: String, _ name: String) -> Bool {
        let tokens = Token.parse(pattern)
        let name = Array(name.unicodeScalars)
        // matched[j]: the tokens so far match name[..<j]. One pass per token: O(pattern × name), no backtracking.
        var matched = [Bool](repeating: false, count: name.count + 1)
        matched[0] = true
        for token in tokens {
            var next = [Bool](repeating: false, count: name.count + 1)
            for j in 0...name.count {
                switch token {
                case .literal(let scalar):
                    next[j] = j > 0 && matched[j - 1] && name[j - 1] == scalar
                case .part:
                    next[j] = matched[j] || (j > 0 && next[j - 1] && name[j - 1] != ".")
                case .parts:
                    next[j] = matched[j] || (j > 0 && next[j - 1] && !Self.endsLine(name[j - 1]))
                }
            }
            matched = next
        }
        // As the regular expression's `$`: the end, or one line terminator (CR LF counts as one) ending the name.
        let n = name.count
        if matched[n] { return true }
        if n >= 2, name[n - 2] == "\r", name[n - 1] == "\n" { return matched[n - 2] }
        return n >= 1 && Self.endsLine(name[n - 1]) && matched[n - 1]
    }

    /// What `**` does not cross: the line terminators of the regular expression (`.*`) it was before.
    private static func endsLine(_ scalar: Unicode.Scalar) -> Bool {
        ["\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}"].contains(scalar)
    }

    private enum Token {
        case literal(Unicode.Scalar)
        case part  // *
        case parts  // **

        /// The pattern's tokens, read character by character as the regular expression's builder read it: a `*`
        /// carrying a combining mark (`*\u{301}`) is one character, not a wildcard, and matches itself.
        static func parse(_ pattern: String) -> [Token] {
            let characters = Array(pattern)
            var tokens: [Token] = []
            var index = 0
            while index < characters.count {
                if characters[index] == "*" {
                    let double = index + 1 < characters.count && characters[index + 1] == "*"
                    tokens.append(double ? .parts : .part)
                    index += double ? 2 : 1
                    continue
                }
                tokens += characters[index].unicodeScalars.map(Token.literal)
                index += 1
            }
            return tokens
        }
    }
}

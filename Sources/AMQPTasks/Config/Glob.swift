import Foundation

/// Glob patterns over dotted task names.
enum Glob {
    static func matches(_ pattern: String, _ name: String) -> Bool {
        var regex = "^"
        var index = pattern.startIndex
        while index < pattern.endIndex {
            let ch = pattern[index]
            if ch == "*" {
                let next = pattern.index(after: index)
                if next < pattern.endIndex, pattern[next] == "*" {
                    regex += ".*"
                    index = pattern.index(after: next)
                    continue
                }
                regex += "[^.]*"
            } else {
                regex += NSRegularExpression.escapedPattern(for: String(ch))
            }
            index = pattern.index(after: index)
        }
        regex += "$"
        return name.range(of: regex, options: .regularExpression) != nil
    }
}

/// Trimming without Foundation's `trimmingCharacters(in:)` (which needs the full Foundation): the same character
/// classes, compared on Unicode scalars as Foundation does.
extension StringProtocol {
    /// The text without leading and trailing spaces and tabs: Foundation's `CharacterSet.whitespaces`
    /// (Unicode general category Zs, U+0009 and U+200B).
    package func trimmingWhitespace() -> String { trimmingScalars(where: Unicode.Scalar.isWhitespace) }

    /// The text without leading and trailing whitespace and line breaks: Foundation's
    /// `CharacterSet.whitespacesAndNewlines` (categories Zs, Zl, Zp, and U+0009–U+000D, U+0085, U+200B).
    package func trimmingWhitespaceAndNewlines() -> String {
        trimmingScalars(where: Unicode.Scalar.isWhitespaceOrNewline)
    }

    /// The text without leading and trailing scalars for which `trimmed` holds.
    package func trimmingScalars(where trimmed: (Unicode.Scalar) -> Bool) -> String {
        let scalars = String(self).unicodeScalars
        guard let first = scalars.firstIndex(where: { !trimmed($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !trimmed($0) })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}

extension Unicode.Scalar {
    /// Foundation's `CharacterSet.whitespaces`: U+0009, the space separators (Zs), and U+200B (zero width space).
    package static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar == "\u{200B}" || scalar.properties.generalCategory == .spaceSeparator
    }

    /// Foundation's `CharacterSet.whitespacesAndNewlines`: the above, U+000A–U+000D, U+0085, and the line and
    /// paragraph separators (Zl, Zp).
    package static func isWhitespaceOrNewline(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x85, 0x200B: return true
        default:
            switch scalar.properties.generalCategory {
            case .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
            default: return false
            }
        }
    }
}

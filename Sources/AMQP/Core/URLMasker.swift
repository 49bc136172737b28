/// Masks the passwords in broker URLs by scanning the text; see `ConnectionConfiguration.masked(_:)`.
enum URLMasker {
    static func mask(_ text: String) -> String {
        let characters = Array(text)
        let starts = urlStarts(in: characters)
        guard let first = starts.first else { return maskSchemeless(String(characters)) }
        var output = first > 0 ? maskSchemeless(String(characters[..<first])) : ""
        for (index, start) in starts.enumerated() {
            var end = index + 1 < starts.count ? starts[index + 1] : characters.count
            // The separator before the next URL (a comma and spaces) is kept as it is.
            var separator = ""
            while index + 1 < starts.count, end > start, characters[end - 1] == "," || characters[end - 1].isWhitespace {
                end -= 1
                separator = String(characters[end]) + separator
            }
            output += maskURL(characters[start..<end]) + separator
        }
        return output
    }

    /// Where URLs begin: a scheme (`letter (letter | digit | + | - | .)*`) followed by `://`, at the start of the
    /// text or after a comma and optional spaces.
    private static func urlStarts(in characters: [Character]) -> [Int] {
        var starts: [Int] = []
        var index = 0
        var atBoundary = true
        while index < characters.count {
            let character = characters[index]
            if atBoundary, character.isASCII, character.isLetter, let length = schemeLength(characters, from: index) {
                starts.append(index)
                index += length
                atBoundary = false
                continue
            }
            if character == "," {
                atBoundary = true
            } else if !(atBoundary && character.isWhitespace) {
                atBoundary = false
            }
            index += 1
        }
        return starts
    }

    /// The length of `scheme://` at `start`, or nil when there is none.
    private static func schemeLength(_ characters: [Character], from start: Int) -> Int? {
        var index = start
        while index < characters.count, characters[index].isASCII,
            characters[index].isLetter || characters[index].isNumber || "+-.".contains(characters[index])
        {
            index += 1
        }
        guard index > start, index + 3 <= characters.count, characters[index] == ":", characters[index + 1] == "/",
            characters[index + 2] == "/"
        else { return nil }
        return index + 3 - start
    }

    /// One URL (with any separator that follows it): the password between `user:` and the last `@` masked.
    private static func maskURL(_ url: ArraySlice<Character>) -> String {
        guard let separator = url.firstIndex(of: ":") else { return String(url) }
        let authorityStart = separator + 3
        let rest = url[authorityStart...]
        if let at = rest.lastIndex(of: "@") {
            guard let colon = rest[..<at].firstIndex(of: ":") else { return String(url) }
            return String(url[...colon]) + "***" + String(url[at...])
        }
        // No `@`: `user:password` without a host still reads as host:port. Mask unless it is a port number.
        let authorityEnd = rest.firstIndex { "/?#".contains($0) } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if authority.first == "[", let bracket = authority.firstIndex(of: "]") {
            authority = authority[authority.index(after: bracket)...]
        }
        guard let colon = authority.firstIndex(of: ":") else { return String(url) }
        let port = authority[authority.index(after: colon)...]
        if port.allSatisfy({ $0.isASCII && $0.isNumber }) { return String(url) }
        // Nothing after the colon is shown: without a host, a `/`, `?` or `#` may be part of the password.
        return String(url[...colon]) + "***"
    }

    /// Text without a scheme (a piece of a URL split at a comma inside its password): everything before its last
    /// `@` may be a password.
    private static func maskSchemeless(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        return "***" + text[at...]
    }
}

/// Bytes written as lowercase hexadecimal, two digits a byte, without a formatter call per byte (`String(cFormat:
/// "%02x")` costs a `vsnprintf` and a `String` each): task ids, trace and span ids, claim queue names.
enum LowercaseHex {
    /// The digits of `bytes`, with `separator` written before each byte whose index is a set bit of
    /// `separatorsBefore` (a UUID's hyphens: bits 4, 6, 8 and 10; a bit mask, so no array is made per call).
    static func string(_ bytes: some Collection<UInt8>, separator: UInt8 = 0, separatorsBefore: UInt64 = 0) -> String {
        let digits: StaticString = "0123456789abcdef"
        let count = bytes.count
        let separators = count >= 64 ? separatorsBefore : separatorsBefore & ((1 << UInt64(count)) - 1)
        let capacity = count * 2 + separators.nonzeroBitCount
        guard capacity > 0 else { return "" }
        return String(unsafeUninitializedCapacity: capacity) { text in
            digits.withUTF8Buffer { hex in
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index < 64, separators & (1 << UInt64(index)) != 0 {
                        text[at] = separator
                        at += 1
                    }
                    text[at] = hex[Int(byte >> 4)]
                    text[at + 1] = hex[Int(byte & 0x0f)]
                    at += 2
                }
                return at
            }
        }
    }

    /// `count` random bytes as hex, drawn again while they are all zero (an all-zero trace or span id is invalid).
    static func randomNonZero(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        while true {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if bytes.contains(where: { $0 != 0 }) { return string(bytes) }
        }
    }
}

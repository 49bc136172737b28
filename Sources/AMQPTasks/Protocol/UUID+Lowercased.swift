import FoundationEssentials

extension UUID {
    /// The UUID in lowercase hexadecimal with hyphens, as Celery writes task ids (`str(uuid4())`):
    /// `uuidString.lowercased()` without Foundation's `snprintf` for each byte and the lowercasing copy (about
    /// 9,000 instructions a task in the client's callgrind profile).
    @usableFromInline var lowercasedString: String {
        let digits: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                digits.withUTF8Buffer { hex in
                    var at = 0
                    for (index, byte) in bytes.enumerated() {
                        if index == 4 || index == 6 || index == 8 || index == 10 {
                            text[at] = UInt8(ascii: "-")
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
    }
}

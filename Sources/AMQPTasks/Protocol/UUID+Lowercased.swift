import FoundationEssentials

extension UUID {
    /// The UUID in lowercase hexadecimal with hyphens, as Celery writes task ids (`str(uuid4())`):
    /// `uuidString.lowercased()` without Foundation's `snprintf` for each byte and the lowercasing copy (about
    /// 9,000 instructions a task in the client's callgrind profile).
    @usableFromInline var lowercasedString: String {
        withUnsafeBytes(of: uuid) { LowercaseHex.string($0, separator: UInt8(ascii: "-"), separatorsBefore: 0b101_0101_0000) }
    }

    /// The first eight hex digits of `lowercasedString`: a short instance name (custody queues, worker identities).
    var shortLowercasedString: String { String(lowercasedString.prefix(8)) }
}

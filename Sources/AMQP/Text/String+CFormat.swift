#if canImport(Glibc)
    import Glibc
#endif

extension String {
    /// `format` filled in by C's `vsnprintf`: what Foundation's `String(format:)` produced for the `%d`, `%f` and
    /// `%x` conversions used here (it formats them the same way, in the C locale, which a Swift process keeps:
    /// nothing here calls `setlocale`), without linking the full Foundation.
    package init(cFormat format: String, _ arguments: any CVarArg...) {
        var buffer = [CChar](repeating: 0, count: 64)
        let needed = Int(withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) })
        precondition(needed >= 0, "bad format \(format)")
        if needed >= buffer.count {
            buffer = [CChar](repeating: 0, count: needed + 1)
            _ = withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) }
        }
        self = String(decoding: buffer.prefix(needed).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

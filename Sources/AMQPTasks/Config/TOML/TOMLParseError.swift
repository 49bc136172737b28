/// Why a TOML document was refused, and where: 1-based line and column (in bytes of UTF-8).
struct TOMLParseError: Error, Equatable, Sendable, CustomStringConvertible {
    let line: Int
    let column: Int
    let message: String

    var description: String { "line \(line), column \(column): \(message)" }
}

/// A TOML table: keys to values, remembering the order the file gave them.
struct TOMLTable: Equatable, Sendable {
    private(set) var keysInFileOrder: [String] = []
    private var values: [String: TOMLValue] = [:]

    init() {}

    /// The keys sorted (the order TOMLKit gave, which the configuration's error lists follow).
    var keys: [String] { keysInFileOrder.sorted() }

    var isEmpty: Bool { keysInFileOrder.isEmpty }

    var count: Int { keysInFileOrder.count }

    subscript(key: String) -> TOMLValue? { values[key] }

    /// Adds `key`; the parser has already refused a key defined twice.
    mutating func append(_ key: String, _ value: TOMLValue) {
        if values.updateValue(value, forKey: key) == nil { keysInFileOrder.append(key) }
    }

    /// Equal when they hold the same keys with equal values, in whatever order.
    static func == (lhs: TOMLTable, rhs: TOMLTable) -> Bool { lhs.values == rhs.values }
}

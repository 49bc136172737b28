/// One key of a key path, with where the file wrote it (for errors).
struct TOMLKey {
    let name: String
    let line: Int
    let column: Int

    func error(_ message: String) -> TOMLParseError {
        TOMLParseError(line: line, column: column, message: message)
    }
}

/// A table being built, and how it came to exist: the TOML rules against defining a key or table twice depend on it.
final class TOMLTableBuilder {
    enum Origin {
        /// Made on the way to a header's table (`a` and `b` of `[a.b.c]`): a later `[a]` may still define it.
        case implicitByHeader
        /// Defined by a `[header]`.
        case header
        /// Defined by dotted keys (`a.b = 1` defines `a`).
        case dottedKeys
        /// One element of an array of tables (`[[a]]`).
        case arrayElement
        /// The document itself.
        case root
    }

    enum Entry {
        case value(TOMLValue)
        case table(TOMLTableBuilder)
        case arrayOfTables([TOMLTableBuilder])
    }

    var origin: Origin
    private var order: [String] = []
    private var entries: [String: Entry] = [:]
    private var definedOnLine: [String: Int] = [:]

    init(origin: Origin) {
        self.origin = origin
    }

    private func set(_ key: TOMLKey, _ entry: Entry) {
        if entries.updateValue(entry, forKey: key.name) == nil {
            order.append(key.name)
            definedOnLine[key.name] = key.line
        }
    }

    private func whereDefined(_ key: TOMLKey) -> String {
        definedOnLine[key.name].map { " (on line \($0))" } ?? ""
    }

    /// `key = value` (its last key) in this table.
    func assign(_ key: TOMLKey, _ value: TOMLValue) throws(TOMLParseError) {
        if entries[key.name] != nil {
            throw key.error("the key '\(key.name)' is defined twice: it already has a value\(whereDefined(key))")
        }
        set(key, .value(value))
    }

    /// The table that the dotted key part `key` (not the last) names, made if new.
    func dottedTable(_ key: TOMLKey) throws(TOMLParseError) -> TOMLTableBuilder {
        switch entries[key.name] {
        case nil:
            let table = TOMLTableBuilder(origin: .dottedKeys)
            set(key, .table(table))
            return table
        case .table(let table):
            switch table.origin {
            case .dottedKeys:
                return table
            case .implicitByHeader:
                table.origin = .dottedKeys
                return table
            case .header, .arrayElement, .root:
                throw key.error(
                    "dotted keys cannot add to the table '\(key.name)': it is defined by a [\(key.name)] header\(whereDefined(key)); write the key under that header")
            }
        case .arrayOfTables:
            throw key.error("dotted keys cannot add to '\(key.name)': it is an array of tables ([[\(key.name)]])")
        case .value(let value):
            throw valueInTheWay(key, value)
        }
    }

    /// The table that the header key part `key` (not the last) names: made if new, the last element of an array
    /// of tables.
    func headerPathTable(_ key: TOMLKey) throws(TOMLParseError) -> TOMLTableBuilder {
        switch entries[key.name] {
        case nil:
            let table = TOMLTableBuilder(origin: .implicitByHeader)
            set(key, .table(table))
            return table
        case .table(let table):
            return table
        case .arrayOfTables(let tables):
            return tables[tables.count - 1]
        case .value(let value):
            throw valueInTheWay(key, value)
        }
    }

    /// The table a `[header]` defines, by its last key part.
    func defineTable(_ key: TOMLKey) throws(TOMLParseError) -> TOMLTableBuilder {
        switch entries[key.name] {
        case nil:
            let table = TOMLTableBuilder(origin: .header)
            set(key, .table(table))
            return table
        case .table(let table):
            switch table.origin {
            case .implicitByHeader:
                table.origin = .header
                return table
            case .dottedKeys:
                throw key.error(
                    "the table '\(key.name)' is already defined by dotted keys\(whereDefined(key)); a [header] cannot define it again")
            case .header, .arrayElement, .root:
                throw key.error("the table [\(key.name)] is defined twice\(whereDefined(key))")
            }
        case .arrayOfTables:
            throw key.error("'\(key.name)' is an array of tables ([[\(key.name)]]); [\(key.name)] cannot define it as a table")
        case .value(let value):
            throw valueInTheWay(key, value)
        }
    }

    /// A new element of the array of tables `[[key]]`.
    func appendArrayElement(_ key: TOMLKey) throws(TOMLParseError) -> TOMLTableBuilder {
        let element = TOMLTableBuilder(origin: .arrayElement)
        switch entries[key.name] {
        case nil:
            set(key, .arrayOfTables([element]))
        case .arrayOfTables:
            // Taken out first so the array is not shared while it grows: appending to a copy made every [[key]]
            // copy all the elements before it (100,000 [[a]] headers took minutes).
            var tables: [TOMLTableBuilder] = []
            if case .arrayOfTables(let existing) = entries.removeValue(forKey: key.name) { tables = existing }
            tables.append(element)
            entries[key.name] = .arrayOfTables(tables)
        case .table:
            throw key.error("'\(key.name)' is already a table\(whereDefined(key)); [[\(key.name)]] cannot make it an array of tables")
        case .value(let value):
            if case .array = value {
                throw key.error(
                    "'\(key.name)' is already an array value\(whereDefined(key)); [[\(key.name)]] cannot append to an array written with [ ]")
            }
            throw valueInTheWay(key, value)
        }
        return element
    }

    private func valueInTheWay(_ key: TOMLKey, _ value: TOMLValue) -> TOMLParseError {
        if case .table = value {
            return key.error(
                "the inline table '\(key.name)'\(whereDefined(key)) is complete as written; nothing can be added to it")
        }
        return key.error("'\(key.name)' already holds a value (\(value.type) \(value.debugDescription))\(whereDefined(key)), not a table")
    }

    /// The finished table.
    func build() -> TOMLTable {
        var table = TOMLTable()
        for key in order {
            switch entries[key]! {
            case .value(let value): table.append(key, value)
            case .table(let builder): table.append(key, .table(builder.build()))
            case .arrayOfTables(let builders): table.append(key, .array(builders.map { .table($0.build()) }))
            }
        }
        return table
    }
}

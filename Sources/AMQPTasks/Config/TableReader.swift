import AMQP
import FoundationEssentials

/// Reads one TOML table, checking types and reporting keys it does not know.
struct TableReader {
    let table: TOMLTable
    let path: String
    let context: ConfigContext

    func key(_ name: String) -> String {
        path.isEmpty ? SourceLocator.component(name) : "\(path).\(SourceLocator.component(name))"
    }

    /// Reports keys other than `known`.
    func allowOnly(_ known: Set<String>) {
        for name in table.keys where !known.contains(name) {
            let options = known.sorted().joined(separator: ", ")
            context.error(key(name), "unknown key; expected one of: \(options)")
        }
    }

    private func wrongType(_ name: String, _ expected: String, _ value: TOMLValue) {
        context.error(key(name), "expected \(expected), got \(value.type) \(value.debugDescription)")
    }

    func string(_ name: String) -> String? {
        guard let value = table[name] else { return nil }
        guard let string = value.string else {
            wrongType(name, "a string", value)
            return nil
        }
        return string
    }

    func int(_ name: String) -> Int? {
        guard let value = table[name] else { return nil }
        guard let int = value.int else {
            wrongType(name, "an integer", value)
            return nil
        }
        return int
    }

    func number(_ name: String) -> Double? {
        guard let value = table[name] else { return nil }
        if let int = value.int { return Double(int) }
        guard let double = value.double else {
            wrongType(name, "a number", value)
            return nil
        }
        return double
    }

    func bool(_ name: String) -> Bool? {
        guard let value = table[name] else { return nil }
        guard let bool = value.bool else {
            wrongType(name, "true or false", value)
            return nil
        }
        return bool
    }

    func stringArray(_ name: String) -> [String]? {
        guard let value = table[name] else { return nil }
        guard let array = value.array else {
            wrongType(name, "a list of strings", value)
            return nil
        }
        var strings: [String] = []
        for (index, element) in array.enumerated() {
            guard let string = element.string else {
                context.error("\(key(name))[\(index)]", "expected a string, got \(element.type) \(element.debugDescription)")
                continue
            }
            strings.append(string)
        }
        return strings
    }

    func subtable(_ name: String) -> TableReader? {
        guard let value = table[name] else { return nil }
        guard let table = value.table else {
            wrongType(name, "a table", value)
            return nil
        }
        return TableReader(table: table, path: key(name), context: context)
    }

    /// An array of tables (`[[name]]` or `name = [{...}, ...]`).
    func tables(_ name: String) -> [TableReader] {
        guard let value = table[name] else { return [] }
        guard let array = value.array else {
            wrongType(name, "a list of tables", value)
            return []
        }
        var readers: [TableReader] = []
        for (index, element) in array.enumerated() {
            let elementPath = "\(key(name))[\(index)]"
            guard let table = element.table else {
                context.error(elementPath, "expected a table, got \(element.type) \(element.debugDescription)")
                continue
            }
            readers.append(TableReader(table: table, path: elementPath, context: context))
        }
        return readers
    }

    /// AMQP arguments: strings, integers, booleans and numbers.
    func arguments(_ name: String) -> FieldTable {
        guard let arguments = subtable(name) else { return [:] }
        var table = FieldTable()
        for argument in arguments.table.keys.sorted() {
            let value = arguments.table[argument]!
            if let int = value.int {
                table[argument] = Int32(exactly: int).map(FieldValue.int32) ?? .int64(Int64(int))
            } else if let bool = value.bool {
                table[argument] = .bool(bool)
            } else if let double = value.double {
                table[argument] = .double(double)
            } else if let string = value.string {
                table[argument] = .string(string)
            } else {
                context.error(arguments.key(argument), "expected a string, integer, number or boolean")
            }
        }
        return table
    }
}

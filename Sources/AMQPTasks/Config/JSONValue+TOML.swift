extension JSONValue {
    /// A TOML value as JSON (`args` and `kwargs` of `[schedules."NAME"]`); dates and times become their RFC 3339 text
    /// in one spelling (`TOMLDateTime.canonicalText`, as with TOMLKit), whichever the file used.
    init(toml value: TOMLValue) {
        if let bool = value.bool {
            self = .bool(bool)
        } else if let int = value.int {
            self = .int(int)
        } else if let double = value.double {
            self = .double(double)
        } else if let string = value.string {
            self = .string(string)
        } else if let array = value.array {
            self = .array(array.map { JSONValue(toml: $0) })
        } else if let table = value.table {
            var object: [String: JSONValue] = [:]
            for key in table.keys { object[key] = JSONValue(toml: table[key]!) }
            self = .object(object)
        } else if let dateTime = value.dateTime {
            self = .string(dateTime.canonicalText)
        } else {
            self = .string(value.debugDescription)
        }
    }
}

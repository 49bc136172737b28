import AMQP

extension FieldValue {
    /// A JSON value as the header type Celery (py-amqp) would send it.
    public init(json: JSONValue) {
        switch json {
        case .null: self = .void
        case .bool(let b): self = .bool(b)
        case .int(let i): self = Int32(exactly: i).map(FieldValue.int32) ?? .int64(Int64(i))
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(FieldValue.init(json:)))
        case .object(let o): self = .table(FieldTable(o.sorted { $0.key < $1.key }.map { (key: $0.key, value: FieldValue(json: $0.value)) }))
        }
    }
}

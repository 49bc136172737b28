/// AMQP 0-9-1 short strings (exchange and queue names, routing keys, most properties, table keys) hold at most
/// 255 bytes. rabbitmq-c refuses a longer one only while it writes the frames, after the `basic.publish` method
/// frame may already be on the wire, which leaves the connection unusable. Checking first keeps one bad name from
/// costing every other message on the connection.
enum ShortStrings {
    static let maxBytes = 255

    /// The first field of `message` that does not fit in a short string, with its length; nil when all fit.
    /// Each property is read directly: reading them through an array of key paths cost ~10,000 instructions a
    /// publish (callgrind).
    static func firstOverlong(in message: OutgoingMessage) -> (field: String, bytes: Int)? {
        func overlong(_ name: String, _ value: String?) -> (field: String, bytes: Int)? {
            guard let bytes = value?.utf8.count, bytes > maxBytes else { return nil }
            return (name, bytes)
        }
        let properties = message.properties
        let fields: [(String, String?)] = [
            ("exchange", message.exchange), ("routing key", message.routingKey),
            ("content_type", properties.contentType), ("content_encoding", properties.contentEncoding),
            ("correlation_id", properties.correlationId), ("reply_to", properties.replyTo),
            ("expiration", properties.expiration), ("message_id", properties.messageId), ("type", properties.type),
            ("user_id", properties.userId), ("app_id", properties.appId), ("cluster_id", properties.clusterId),
        ]
        for (name, value) in fields { if let found = overlong(name, value) { return found } }
        if let headers = message.properties.headers, let key = overlongKey(in: headers) {
            return ("header name '\(key.prefix(40))…'", key.utf8.count)
        }
        return nil
    }

    /// Refuses, before anything is written, a method whose names do not fit in short strings: rabbitmq-c would
    /// write half the frame and the connection would be lost. `names` pairs what each is ("queue name") with its
    /// value; the keys of `arguments` (table field names) are short strings too. Throws `.invalidArgument`.
    static func check(_ operation: String, _ names: KeyValuePairs<String, String>, arguments: FieldTable = [:]) throws {
        for (field, value) in names where value.utf8.count > maxBytes {
            throw overlong(operation, "the \(field) '\(value.prefix(40))…'", bytes: value.utf8.count)
        }
        if let key = overlongKey(in: arguments) {
            throw overlong(operation, "argument name '\(key.prefix(40))…'", bytes: key.utf8.count)
        }
    }

    private static func overlong(_ operation: String, _ what: String, bytes: Int) -> AMQPError {
        AMQPError(
            .invalidArgument, operation: operation,
            message: "\(what) is \(bytes) bytes long; AMQP allows at most \(maxBytes)",
            hint: "shorten it; nothing was sent and the connection stays open")
    }

    private static func overlongKey(in table: FieldTable) -> String? {
        for entry in table.entries {
            if entry.key.utf8.count > maxBytes { return entry.key }
            if let nested = overlongKey(in: entry.value) { return nested }
        }
        return nil
    }

    private static func overlongKey(in value: FieldValue) -> String? {
        switch value {
        case .table(let table): return overlongKey(in: table)
        case .array(let values): return values.lazy.compactMap { overlongKey(in: $0) }.first
        default: return nil
        }
    }
}

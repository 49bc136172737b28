/// AMQP 0-9-1 short strings (exchange and queue names, routing keys, most properties, table keys) hold at most
/// 255 bytes. rabbitmq-c refuses a longer one only while it writes the frames, after the `basic.publish` method
/// frame may already be on the wire, which leaves the connection unusable. Checking first keeps one bad name from
/// costing every other message on the connection.
enum ShortStrings {
    static let maxBytes = 255

    /// The first field of `message` that does not fit in a short string, with its length; nil when all fit.
    /// The properties that are short strings (built once, not per publish).
    private static let shortStringProperties: [(name: String, path: KeyPath<BasicProperties, String?> & Sendable)] = [
        ("content_type", \.contentType), ("content_encoding", \.contentEncoding), ("correlation_id", \.correlationId),
        ("reply_to", \.replyTo), ("expiration", \.expiration), ("message_id", \.messageId), ("type", \.type),
        ("user_id", \.userId), ("app_id", \.appId), ("cluster_id", \.clusterId),
    ]

    /// The first field of `message` that does not fit in a short string, with its length; nil when all fit.
    static func firstOverlong(in message: OutgoingMessage) -> (field: String, bytes: Int)? {
        if message.exchange.utf8.count > maxBytes { return ("exchange", message.exchange.utf8.count) }
        if message.routingKey.utf8.count > maxBytes { return ("routing key", message.routingKey.utf8.count) }
        for (name, path) in shortStringProperties {
            if let value = message.properties[keyPath: path], value.utf8.count > maxBytes { return (name, value.utf8.count) }
        }
        if let headers = message.properties.headers, let key = overlongKey(in: headers) {
            return ("header name '\(key.prefix(40))…'", key.utf8.count)
        }
        return nil
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

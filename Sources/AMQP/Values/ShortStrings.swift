/// AMQP 0-9-1 short strings (exchange and queue names, routing keys, most properties, table keys) hold at most
/// 255 bytes. rabbitmq-c refuses a longer one only while it writes the frames, after the `basic.publish` method
/// frame may already be on the wire, which leaves the connection unusable. Checking first keeps one bad name from
/// costing every other message on the connection.
enum ShortStrings {
    static let maxBytes = 255

    /// The first field of `message` that does not fit in a short string, with its length; nil when all fit.
    static func firstOverlong(in message: OutgoingMessage) -> (field: String, bytes: Int)? {
        var fields: [(String, String?)] = [("exchange", message.exchange), ("routing key", message.routingKey)]
        let p = message.properties
        fields += [
            ("content_type", p.contentType), ("content_encoding", p.contentEncoding),
            ("correlation_id", p.correlationId), ("reply_to", p.replyTo), ("expiration", p.expiration),
            ("message_id", p.messageId), ("type", p.type), ("user_id", p.userId), ("app_id", p.appId),
            ("cluster_id", p.clusterId),
        ]
        for (field, value) in fields {
            if let value, value.utf8.count > maxBytes { return (field, value.utf8.count) }
        }
        if let headers = p.headers, let key = overlongKey(in: headers) {
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

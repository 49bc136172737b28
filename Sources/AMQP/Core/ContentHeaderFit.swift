import CRabbitMQ

/// A message's content header (its properties, with the headers table) travels in one frame, which AMQP never
/// splits: it must fit in the negotiated `frame_max`. rabbitmq-c finds out only while it writes that frame
/// (`AMQP_STATUS_TABLE_TOO_BIG`, "table too large for buffer"), after the `basic.publish` method frame is on the
/// wire; the broker then sees a method without its content and closes the connection. Encoding the properties
/// first refuses the one message and keeps the connection.
extension ConnectionCore {
    /// What a content header frame holds besides the encoded properties: the frame header (type, channel, size:
    /// 7 bytes), the class id, weight and body size (12) and the frame end (1).
    static let contentHeaderFrameOverhead = 20

    /// Nil when `properties` fit in one content header frame; else the error to give the caller (nothing sent).
    /// Without a headers table they always fit: every other property is a number or a short string (checked
    /// before, `ShortStrings`), about 2,600 bytes at most, and `frame_max` is at least 4,096.
    ///
    /// `source` is what `properties` were built from: when a bound on its encoded size (`encodedSizeBound`, a walk
    /// over the headers' lengths) fits, the exact encoding is skipped; it cost some 5,000 instructions a publish.
    func contentHeaderOverflow(_ properties: inout amqp_basic_properties_t, from source: BasicProperties) -> AMQPError? {
        guard properties._flags & UInt32(AMQP_BASIC_HEADERS_FLAG) != 0 else { return nil }
        let frameMax = Int(amqp_get_frame_max(state))
        let room = frameMax - Self.contentHeaderFrameOverhead
        if source.encodedSizeBound <= room { return nil }
        let encoded = amqp_bytes_t(len: room, bytes: arena.scratch(room))
        let status = amqp_encode_properties(UInt16(AMQP_BASIC_CLASS), &properties, encoded)
        guard status < 0 else { return nil }
        return AMQPError(
            .invalidArgument, operation: "basic.publish",
            message: "the message's properties and headers do not fit in one frame of the negotiated frame size "
                + "(frame_max \(frameMax) bytes, so at most \(room) bytes of properties): the message is too large "
                + "for this connection (\(String(cString: amqp_error_string2(status))))",
            libraryStatus: status,
            hint: "nothing was sent and the connection stays open; move large values from the headers into the "
                + "body (which may be any size), or connect with a larger frame_max (URL option ?frame_max=, up to "
                + "the broker's frame_max)")
    }
}

extension BasicProperties {
    /// At least as many bytes as these properties take encoded in a content header (AMQP 0-9-1's field encoding:
    /// 2 bytes of flags, each short string its length and 1, the numbers their width, the table 4 and its entries),
    /// with room to spare; computed from lengths only, without encoding.
    var encodedSizeBound: Int {
        var size = 2 + 1 + 1 + 8  // flags, delivery mode, priority, timestamp
        for text in [contentType, contentEncoding, correlationId, replyTo, expiration, messageId, type, userId, appId,
            clusterId]
        {
            if let text { size += 1 + text.utf8.count }
        }
        if let headers { size += headers.encodedSizeBound }
        return size
    }
}

extension FieldTable {
    /// At least the encoded size of this table: its 4-byte length, then per entry the key's length byte and bytes
    /// and the value's.
    var encodedSizeBound: Int {
        var size = 4
        for entry in entries { size += 1 + entry.key.utf8.count + entry.value.encodedSizeBound }
        return size
    }
}

extension FieldValue {
    /// At least the encoded size of this value: its type byte and its content.
    var encodedSizeBound: Int {
        switch self {
        case .bool, .int8, .uint8: 2
        case .int16, .uint16: 3
        case .int32, .uint32, .float: 5
        case .int64, .uint64, .double, .timestamp: 9
        case .decimal: 6
        case .string(let text): 5 + text.utf8.count
        case .bytes(let bytes): 5 + bytes.count
        case .table(let table): 1 + table.encodedSizeBound
        case .array(let values): values.reduce(5) { $0 + $1.encodedSizeBound }
        case .void: 1
        }
    }
}

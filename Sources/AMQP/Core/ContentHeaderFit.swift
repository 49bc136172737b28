import CRabbitMQ

/// A message's content header (its properties, with the headers table) travels in one frame, which AMQP never
/// splits: it must fit in the negotiated `frame_max`. rabbitmq-c finds out only while it writes that frame
/// (`AMQP_STATUS_TABLE_TOO_BIG`, "table too large for buffer"), after the `basic.publish` method frame is on the
/// wire; the broker then sees a method without its content and closes the connection. Measuring the properties
/// first refuses the one message and keeps the connection.
extension ConnectionCore {
    /// What a content header frame holds besides the encoded properties: the frame header (type, channel, size:
    /// 7 bytes), the class id, weight and body size (12) and the frame end (1).
    static let contentHeaderFrameOverhead = 20

    /// Nil when `properties` fit in one content header frame; else the error to give the caller (nothing sent):
    /// `.invalidArgument` with `libraryStatus` `AMQP_STATUS_TABLE_TOO_BIG`, which callers tell this refusal by.
    /// Without a headers table they always fit: every other property is a number or a short string (checked
    /// before, `ShortStrings`), about 2,600 bytes at most, and `frame_max` is at least 4,096.
    ///
    /// Their size (`encodedSize`, a walk over the headers' lengths) is what rabbitmq-c will encode, so nothing is
    /// encoded to check it (that cost some 5,000 instructions a publish). `EncodedSizeBoundTests` holds the two
    /// equal for every field type and nesting.
    func contentHeaderOverflow(_ properties: BasicProperties) -> AMQPError? {
        guard properties.headers != nil else { return nil }
        let frameMax = io.frameMax  // negotiated: rabbitmq-c's may be larger (`ConsumingFrameHeadroom`)
        let room = frameMax - Self.contentHeaderFrameOverhead
        let size = properties.encodedSize
        guard size > room else { return nil }
        return AMQPError(
            .invalidArgument, operation: "basic.publish",
            message: "the message's properties and headers do not fit in one frame of the negotiated frame size "
                + "(frame_max \(frameMax) bytes, so at most \(room) bytes of properties): the message is too large "
                + "for this connection (its properties and headers take \(size) bytes)",
            libraryStatus: AMQP_STATUS_TABLE_TOO_BIG.rawValue,  // what rabbitmq-c would have said, after writing
            hint: "nothing was sent and the connection stays open; move large values from the headers into the "
                + "body (which may be any size), or connect with a larger frame_max (URL option ?frame_max=, up to "
                + "the broker's frame_max)")
    }
}

extension BasicProperties {
    /// How many bytes these properties take encoded in a content header, as rabbitmq-c's `amqp_encode_properties`
    /// writes them (AMQP 0-9-1's field encoding: 2 bytes of flags, each present short string its length and 1, each
    /// present number its width, the table 4 and its entries); computed from lengths only, without encoding.
    var encodedSize: Int {
        var size = 2  // flags
        if deliveryMode != nil { size += 1 }
        if priority != nil { size += 1 }
        if timestamp != nil { size += 8 }
        for text in [contentType, contentEncoding, correlationId, replyTo, expiration, messageId, type, userId, appId,
            clusterId]
        {
            if let text { size += 1 + text.utf8.count }
        }
        if let headers { size += headers.encodedSize }
        return size
    }
}

extension FieldTable {
    /// The encoded size of this table: its 4-byte length, then per entry the key's length byte and bytes and the
    /// value's.
    var encodedSize: Int {
        var size = 4
        for entry in entries { size += 1 + entry.key.utf8.count + entry.value.encodedSize }
        return size
    }
}

extension FieldValue {
    /// The encoded size of this value: its type byte and its content.
    var encodedSize: Int {
        switch self {
        case .bool, .int8, .uint8: 2
        case .int16, .uint16: 3
        case .int32, .uint32, .float: 5
        case .int64, .uint64, .double, .timestamp: 9
        case .decimal: 6
        case .string(let text): 5 + text.utf8.count
        case .bytes(let bytes): 5 + bytes.count
        case .table(let table): 1 + table.encodedSize
        case .array(let values): values.reduce(5) { $0 + $1.encodedSize }
        case .void: 1
        }
    }
}

import FoundationEssentials

/// The properties of a message (AMQP `basic` content header): every field is optional, as on the wire.
public struct BasicProperties: Sendable, Hashable {
    public var contentType: String?
    public var contentEncoding: String?
    public var headers: FieldTable?
    /// 1 = transient, 2 = persistent (written to disk by the broker). See `DeliveryMode`.
    public var deliveryMode: UInt8?
    public var priority: UInt8?
    public var correlationId: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a decimal string (e.g. `"60000"`).
    public var expiration: String?
    public var messageId: String?
    /// Seconds since the epoch on the wire.
    public var timestamp: Date?
    public var type: String?
    public var userId: String?
    public var appId: String?
    public var clusterId: String?

    public init(
        contentType: String? = nil, contentEncoding: String? = nil, headers: FieldTable? = nil,
        deliveryMode: UInt8? = nil, priority: UInt8? = nil, correlationId: String? = nil, replyTo: String? = nil,
        expiration: String? = nil, messageId: String? = nil, timestamp: Date? = nil, type: String? = nil,
        userId: String? = nil, appId: String? = nil, clusterId: String? = nil
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageId = messageId
        self.timestamp = timestamp
        self.type = type
        self.userId = userId
        self.appId = appId
        self.clusterId = clusterId
    }

    /// `delivery_mode` values.
    public enum DeliveryMode {
        public static let transient: UInt8 = 1
        public static let persistent: UInt8 = 2
    }

    /// True when `deliveryMode` is 2: the broker writes the message to disk on a durable queue.
    public var isPersistent: Bool { deliveryMode == DeliveryMode.persistent }
}

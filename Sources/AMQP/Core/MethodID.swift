/// AMQP 0-9-1 method numbers (class id << 16 | method id). rabbitmq-c defines them as casting macros, which
/// Swift does not import, so the ones the I/O thread dispatches on are spelled out here.
enum MethodID {
    static let connectionClose: UInt32 = 0x000A_0032
    static let connectionCloseOk: UInt32 = 0x000A_0033
    static let connectionBlocked: UInt32 = 0x000A_003C
    static let connectionUnblocked: UInt32 = 0x000A_003D
    static let channelFlow: UInt32 = 0x0014_0014
    static let channelClose: UInt32 = 0x0014_0028
    static let channelCloseOk: UInt32 = 0x0014_0029
    static let basicCancel: UInt32 = 0x003C_001E
    static let basicCancelOk: UInt32 = 0x003C_001F
    static let basicReturn: UInt32 = 0x003C_0032
    static let basicDeliver: UInt32 = 0x003C_003C
    static let basicGetOk: UInt32 = 0x003C_0047
    static let basicGetEmpty: UInt32 = 0x003C_0048
    static let basicAck: UInt32 = 0x003C_0050
    static let basicNack: UInt32 = 0x003C_0078

    /// The spec's name of a method, from the class and method ids the broker puts in `channel.close`.
    static func name(classID: UInt16, methodID: UInt16) -> String? {
        switch (classID, methodID) {
        case (10, 40): "connection.open"
        case (20, 10): "channel.open"
        case (40, 10): "exchange.declare"
        case (40, 20): "exchange.delete"
        case (40, 30): "exchange.bind"
        case (40, 40): "exchange.unbind"
        case (50, 10): "queue.declare"
        case (50, 20): "queue.bind"
        case (50, 30): "queue.purge"
        case (50, 40): "queue.delete"
        case (50, 50): "queue.unbind"
        case (60, 10): "basic.qos"
        case (60, 20): "basic.consume"
        case (60, 30): "basic.cancel"
        case (60, 40): "basic.publish"
        case (60, 70): "basic.get"
        case (60, 80): "basic.ack"
        case (60, 90): "basic.reject"
        case (60, 120): "basic.nack"
        case (85, 10): "confirm.select"
        default: nil
        }
    }
}

/// An AMQP 0-9-1 method named by its class id and method id, as the broker names the method it refused in
/// `channel.close` and `connection.close`.
public struct AMQPMethod: Hashable, Sendable, CustomStringConvertible {
    public let classID: UInt16
    public let methodID: UInt16

    public init(classID: UInt16, methodID: UInt16) {
        self.classID = classID
        self.methodID = methodID
    }

    public static let connectionOpen = AMQPMethod(classID: 10, methodID: 40)
    public static let channelOpen = AMQPMethod(classID: 20, methodID: 10)
    public static let exchangeDeclare = AMQPMethod(classID: 40, methodID: 10)
    public static let queueDeclare = AMQPMethod(classID: 50, methodID: 10)
    public static let queueBind = AMQPMethod(classID: 50, methodID: 20)
    public static let basicConsume = AMQPMethod(classID: 60, methodID: 20)
    public static let basicPublish = AMQPMethod(classID: 60, methodID: 40)

    /// The spec's name, e.g. `queue.declare`, or nil for a method this client does not know.
    public var name: String? { MethodID.name(classID: classID, methodID: methodID) }

    public var description: String { name ?? "method \(classID).\(methodID)" }
}

import AMQP
import FoundationEssentials

/// `[[exchanges]]`.
public struct ExchangeDefinition: Sendable, Hashable {
    public var name: String
    public var type: ExchangeType = .direct
    public var durable = true
    public var autoDelete = false
    public var arguments: FieldTable = [:]

    public init(
        name: String, type: ExchangeType = .direct, durable: Bool = true, autoDelete: Bool = false,
        arguments: FieldTable = [:]
    ) {
        self.name = name
        self.type = type
        self.durable = durable
        self.autoDelete = autoDelete
        self.arguments = arguments
    }
}

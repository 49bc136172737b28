import AMQP
import FoundationEssentials

/// Reads one `[[exchanges]]` table into an `ExchangeDefinition`.
enum ExchangeSection {
    static func read(_ r: TableReader) -> ExchangeDefinition? {
        r.allowOnly(["name", "type", "durable", "auto_delete", "arguments"])
        guard let name = r.required("name") else { return nil }
        r.checkShortString("name", name)
        var exchange = ExchangeDefinition(name: name)
        if let type = r.string("type") {
            if ["direct", "topic", "fanout", "headers"].contains(type) || type.hasPrefix("x-") {
                exchange.type = ExchangeType(rawValue: type)
            } else {
                r.context.error(r.key("type"), "expected direct, topic, fanout, headers or a plugin's x- type, got \"\(type)\"")
            }
        }
        exchange.durable = r.bool("durable") ?? true
        exchange.autoDelete = r.bool("auto_delete") ?? false
        exchange.arguments = r.arguments("arguments")
        return exchange
    }
}

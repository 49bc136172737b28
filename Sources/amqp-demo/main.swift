// The wrapper's demo and benchmark: declares a durable queue, publishes persistent messages with publisher
// confirms (each awaited, then pipelined), consumes them with prefetch 1 and acks each one.
// Usage: amqp-demo [COUNT] [QUEUE] [--json]; the broker URL comes from AMQP_URL (default: the local broker).
import AMQP
import Foundation

let arguments = CommandLine.arguments.dropFirst().filter { !$0.hasPrefix("--") }
let json = CommandLine.arguments.contains("--json")
let count = arguments.first.flatMap(Int.init) ?? 1000
let queue = arguments.dropFirst().first ?? "amqp-tasks.demo"
let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"

func say(_ text: String) { if !json { print(text) } }

let clock = ContinuousClock()
func rate(_ n: Int, _ duration: Duration) -> Double {
    Double(n) / (Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
}

do {
    let connection = try await Connection.open(url: url)
    let channel = try await connection.openChannel()
    try await channel.declareQueue(queue, durable: true)
    try await channel.purgeQueue(queue)
    try await channel.confirmSelect()
    say("declared durable queue '\(queue)' on \(connection.configuration.redactedDescription)")

    let persistent = BasicProperties(deliveryMode: BasicProperties.DeliveryMode.persistent)
    let single = max(count / 10, 1)
    var start = clock.now
    for i in 0..<single {
        try await channel.publish(Data("message \(i)".utf8), routingKey: queue, properties: persistent)
    }
    let singleRate = rate(single, clock.now - start)
    say("published \(single) persistent messages, each confirmed before the next: \(Int(singleRate)) msg/s")

    let batch = (0..<count).map {
        OutgoingMessage(body: Data("message \($0)".utf8), routingKey: queue, properties: persistent)
    }
    start = clock.now
    let results = try await channel.publish(batch: batch)
    let pipelinedRate = rate(count, clock.now - start)
    let confirmed = results.filter { (try? $0.get()) != nil }.count
    say("published \(count) more with pipelined confirms (\(confirmed) confirmed): \(Int(pipelinedRate)) msg/s")

    let consumerChannel = try await connection.openChannel()
    try await consumerChannel.setPrefetch(1)
    let consumer = try await consumerChannel.consume(queue: queue)
    let total = single + count
    var received = 0
    start = clock.now
    for try await delivery in consumer {
        try await delivery.ack()
        received += 1
        if received == total { break }
    }
    let consumeRate = rate(total, clock.now - start)
    say("consumed and acked \(received) messages with prefetch 1: \(Int(consumeRate)) msg/s")
    try await consumer.cancel()
    await connection.close()
    if json {
        print(
            "{\"impl\": \"amqp-tasks wrapper\", \"publish_confirm_each\": \(Int(singleRate)), "
                + "\"publish_pipelined\": \(Int(pipelinedRate)), \"consume_prefetch1\": \(Int(consumeRate))}")
    }
} catch {
    FileHandle.standardError.write(Data("amqp-demo: \(error)\n".utf8))
    exit(1)
}

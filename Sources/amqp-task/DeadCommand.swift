import AMQP
import AMQPTasks
import ArgumentParser
import Foundation

/// `amqp-task dead list|requeue|purge QUEUE`: look at and replay the tasks a worker could not run.
struct Dead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect, replay or drop dead-lettered tasks (QUEUE.dead).",
        subcommands: [List.self, Requeue.self, PurgeDead.self])

    /// `reports` and `reports.dead` both name the dead-letter queue of `reports`.
    static func deadQueue(_ name: String) -> String { name.hasSuffix(".dead") ? name : DeadLetters.name(for: name) }

    /// Where a dead-lettered message came from: our header, or RabbitMQ's `x-death` (delivery limit, TTL…).
    static func origin(of delivery: Delivery) -> String? {
        let headers = delivery.properties.headers ?? [:]
        if let queue = headers[DeadLetters.Header.queue]?.stringValue { return queue }
        return headers["x-death"]?.arrayValue?.first?.tableValue?["queue"]?.stringValue
    }

    static func reason(of delivery: Delivery) -> String {
        let headers = delivery.properties.headers ?? [:]
        if let reason = headers[DeadLetters.Header.reason]?.stringValue {
            return "\(reason): \(headers[DeadLetters.Header.error]?.stringValue ?? "")"
        }
        if let death = headers["x-death"]?.arrayValue?.first?.tableValue {
            return "\(death["reason"]?.stringValue ?? "dead-lettered") by the broker (\(death["count"]?.intValue ?? 1)×)"
        }
        return "unknown"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show each dead-lettered task as one JSON line; nothing is removed.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The task queue or its dead-letter queue, e.g. reports or reports.dead.")
        var queue: String

        func run() async throws {
            let (_, connection) = try await common.connect()
            let channel = try await connection.openChannel()
            var count = 0
            while let delivery = try await channel.get(queue: Dead.deadQueue(queue)) {
                let headers = delivery.properties.headers ?? [:]
                let line: JSONValue = [
                    "id": headers["id"]?.stringValue.map(JSONValue.string) ?? .null,
                    "task": headers["task"]?.stringValue.map(JSONValue.string) ?? .null,
                    "queue": Dead.origin(of: delivery).map(JSONValue.string) ?? .null,
                    "reason": .string(Dead.reason(of: delivery)),
                    "body": .string(String(decoding: delivery.body.prefix(200), as: UTF8.self)),
                ]
                print(line.jsonString)
                count += 1
            }
            // Closing the channel returns every message read to the queue: listing removes nothing.
            await connection.close()
            FileHandle.standardError.write(Data("\(count) dead-lettered in \(Dead.deadQueue(queue))\n".utf8))
        }
    }

    struct Requeue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send dead-lettered tasks back to the queue they came from (confirmed before removal).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The task queue or its dead-letter queue.")
        var queue: String
        @Option(help: "Requeue at most this many.")
        var limit: Int?

        func run() async throws {
            let (_, connection) = try await common.connect()
            let channel = try await connection.openChannel()
            try await channel.confirmSelect()
            var moved = 0
            while limit.map({ moved < $0 }) ?? true, let delivery = try await channel.get(queue: Dead.deadQueue(queue)) {
                guard let origin = Dead.origin(of: delivery) else {
                    try await delivery.nack(requeue: true)
                    FileHandle.standardError.write(Data("a message with no origin queue was left in place\n".utf8))
                    break
                }
                var properties = delivery.properties
                var headers = properties.headers ?? [:]
                for key in [DeadLetters.Header.reason, DeadLetters.Header.error, DeadLetters.Header.queue,
                    DeadLetters.Header.worker, DeadLetters.Header.time, "x-death", "x-first-death-exchange",
                    "x-first-death-queue", "x-first-death-reason", "x-delivery-count"]
                {
                    headers[key] = nil
                }
                properties.headers = headers
                try await channel.publish(
                    OutgoingMessage(body: delivery.body, routingKey: origin, properties: properties, mandatory: true))
                try await delivery.ack()
                moved += 1
            }
            await connection.close()
            print("requeued \(moved) tasks from \(Dead.deadQueue(queue))")
        }
    }

    struct PurgeDead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "purge", abstract: "Drop every dead-lettered task.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The task queue or its dead-letter queue.")
        var queue: String
        @Flag(help: "Do not ask for confirmation.")
        var force = false

        func run() async throws {
            let purge = try Purge.parse([Dead.deadQueue(queue)] + (force ? ["--force"] : []) + common.arguments)
            try await purge.run()
        }
    }
}

extension CommonOptions {
    /// These options as command-line arguments, to hand on to another subcommand.
    var arguments: [String] {
        (config.map { ["--config", $0] } ?? []) + (url.map { ["--url", $0] } ?? [])
    }
}

import AMQP
import AMQPTasks
import ArgumentParser
import Foundation

/// `amqp-task inspect ping|active|stats|registered`: asks every worker, Swift or Celery, through `celery.pidbox`.
struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask workers (Swift and Celery alike) over Celery's remote-control broadcast; one JSON line per reply.")

    @OptionGroup var common: CommonOptions

    @Argument(help: "ping, active, stats or registered.")
    var method: String

    @Option(name: .customLong("destination"), help: "Only this worker (repeatable), e.g. amqp-worker@host.")
    var destinations: [String] = []

    @Option(help: "Seconds to collect replies.")
    var timeout: Double = 1

    func validate() throws {
        guard ["ping", "active", "stats", "registered"].contains(method) else {
            throw ValidationError("method must be ping, active, stats or registered, got \(method)")
        }
    }

    func run() async throws {
        let (_, connection) = try await common.connect()
        let channel = try await connection.openChannel()
        let oid = UUID().uuidString.lowercased()
        try await channel.declareExchange("celery.pidbox", type: .fanout, durable: false)
        try await channel.declareExchange("reply.celery.pidbox", type: .direct, durable: false)
        let replyQueue = try await channel.declareQueue(
            "\(oid).reply.celery.pidbox", durable: false, exclusive: true, autoDelete: true,
            arguments: ["x-expires": .int32(10000), "x-message-ttl": .int32(300_000)]
        ).name
        try await channel.bindQueue(replyQueue, to: "reply.celery.pidbox", routingKey: oid)
        let consumer = try await channel.consume(queue: replyQueue, exclusive: true)
        let ticket = UUID().uuidString.lowercased()
        let request: JSONValue = [
            "method": .string(method), "arguments": [:],
            "destination": destinations.isEmpty ? nil : .array(destinations.map(JSONValue.string)),
            "pattern": nil, "matcher": nil, "ticket": .string(ticket),
            "reply_to": ["exchange": "reply.celery.pidbox", "routing_key": .string(oid)],
        ]
        try await channel.publish(
            request.jsonData(), exchange: "celery.pidbox", routingKey: "",
            properties: BasicProperties(
                contentType: "application/json", contentEncoding: "utf-8",
                headers: ["clock": .int32(1), "expires": .double(Date().timeIntervalSince1970 + timeout)],
                deliveryMode: BasicProperties.DeliveryMode.persistent, priority: 0))
        let stopper = Task {
            try await Task.sleep(for: .seconds(timeout))
            try await consumer.cancel()
        }
        var replies = 0
        for try await delivery in consumer {
            try await delivery.ack()
            guard delivery.properties.headers?["ticket"]?.stringValue == ticket else { continue }
            print(String(decoding: delivery.body, as: UTF8.self))
            replies += 1
        }
        stopper.cancel()
        await connection.close()
        if replies == 0 {
            FileHandle.standardError.write(Data("amqp-task inspect: no worker replied within \(timeout) s\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `amqp-task events`: a live view of Celery events from Swift and Celery workers, one line per event.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show Celery events (workers started with --events / -E) as they happen, one line each.")

    @OptionGroup var common: CommonOptions

    @Option(help: "Stop after this many events.")
    var count: Int?

    @Flag(help: "Print each event as its JSON instead of a summary line.")
    var json = false

    @Flag(help: "A refreshing table of workers and recent tasks instead of one line per event.")
    var top = false

    func run() async throws {
        let (_, connection) = try await common.connect()
        let channel = try await connection.openChannel()
        try await channel.declareExchange("celeryev", type: .topic, durable: true)
        let queue = try await channel.declareQueue(
            "amqp-task.events.\(UUID().uuidString.prefix(8).lowercased())", durable: false, exclusive: true,
            autoDelete: true, arguments: ["x-message-ttl": .int32(5000), "x-expires": .int32(60000)]
        ).name
        try await channel.bindQueue(queue, to: "celeryev", routingKey: "#")
        let consumer = try await channel.consume(queue: queue, exclusive: true)
        // Said once the view is bound and consuming, so a script (or a test) knows no later event can be missed.
        FileHandle.standardError.write(Data("amqp-task events: listening on exchange celeryev (Ctrl-C to stop)\n".utf8))
        var seen = 0
        var board = EventBoard()
        for try await delivery in consumer {
            try await delivery.ack()
            // Celery batches task events into one `task.multi` message holding a list.
            let events = (try? JSONValue.parse(delivery.body)).map { $0.arrayValue ?? [$0] } ?? []
            for event in events {
                // A live view: written as it happens, also into a pipe (print would buffer it).
                if top {
                    board.apply(event)
                    FileHandle.standardOutput.write(Data(("\u{1B}[H\u{1B}[2J" + board.render() + "\n").utf8))
                } else {
                    FileHandle.standardOutput.write(Data(((json ? event.jsonString : Self.summary(event)) + "\n").utf8))
                }
                seen += 1
                if let count, seen >= count {
                    await connection.close()
                    return
                }
            }
        }
    }

    static func summary(_ event: JSONValue) -> String {
        var parts = [time(of: event), event["hostname"]?.stringValue ?? "?", event["type"]?.stringValue ?? "?"]
        for key in ["uuid", "name", "args", "result", "runtime", "exception", "active", "processed"] {
            if let value = event[key], !value.isNull {
                parts.append("\(key)=\(value.stringValue ?? value.jsonString)")
            }
        }
        return parts.joined(separator: " ")
    }

    /// Timestamps Celery's `datetime` can show: years 1 to 9999.
    static let showableTimestamps: ClosedRange<Double> = -62_135_596_800 ... 253_402_300_799

    /// The event's time, or the raw `timestamp` marked as such when it is no date (1e300 from a buggy or hostile
    /// publisher must not stop the viewer).
    static func time(of event: JSONValue) -> String {
        guard let timestamp = event["timestamp"] else { return CeleryTime.format(Date()) }
        guard let seconds = timestamp.doubleValue, showableTimestamps.contains(seconds) else {
            return "timestamp=\(timestamp.jsonString)?"
        }
        return CeleryTime.format(Date(timeIntervalSince1970: seconds))
    }
}

/// The state `amqp-task events --top` shows: workers with their counts, and the latest tasks with their states.
struct EventBoard {
    struct WorkerRow {
        var online = true
        var active = 0
        var processed = 0
        var seen = Date()
    }

    struct TaskRow {
        var name = "?"
        var state = "?"
        var worker = "?"
        var runtime: Double?
    }

    var workers: [String: WorkerRow] = [:]
    var tasks: [String: TaskRow] = [:]
    var order: [String] = []

    mutating func apply(_ event: JSONValue) {
        guard let type = event["type"]?.stringValue, let host = event["hostname"]?.stringValue else { return }
        if type.hasPrefix("worker-") {
            var row = workers[host] ?? WorkerRow()
            row.online = type != "worker-offline"
            row.active = event["active"]?.intValue ?? row.active
            row.processed = event["processed"]?.intValue ?? row.processed
            row.seen = Date()
            workers[host] = row
        } else if let id = event["uuid"]?.stringValue {
            if tasks[id] == nil {
                order.append(id)
                if order.count > 20 { tasks.removeValue(forKey: order.removeFirst()) }
            }
            var row = tasks[id] ?? TaskRow()
            row.name = event["name"]?.stringValue ?? row.name
            row.state = String(type.dropFirst("task-".count)).uppercased()
            row.worker = host
            row.runtime = event["runtime"]?.doubleValue ?? row.runtime
            tasks[id] = row
        }
    }

    func render() -> String {
        var lines = ["WORKER                          STATUS   ACTIVE  PROCESSED"]
        for (host, row) in workers.sorted(by: { $0.key < $1.key }) {
            lines.append(
                host.padding(toLength: 32, withPad: " ", startingAt: 0) + (row.online ? "online " : "offline")
                    + String(format: "%8ld %10ld", row.active, row.processed))
        }
        lines.append("")
        lines.append("TASK                                  NAME                  STATE      RUNTIME  WORKER")
        for id in order.reversed() {
            guard let row = tasks[id] else { continue }
            lines.append(
                id.padding(toLength: 38, withPad: " ", startingAt: 0)
                    + row.name.padding(toLength: 22, withPad: " ", startingAt: 0)
                    + row.state.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + (row.runtime.map { String(format: "%7.3fs", $0) } ?? "       -") + "  " + row.worker)
        }
        return lines.joined(separator: "\n")
    }
}

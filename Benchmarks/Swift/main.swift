// The Swift side of Benchmarks/run: the same scenarios as Benchmarks/raw/raw_bench.c, through the AMQP wrapper
// and the task layer. Every mode prints one JSON line.
//
//   amqp-tasks-bench publish   URL QUEUE COUNT   wrapper: persistent publishes, each confirm awaited, then pipelined
//   amqp-tasks-bench fill      URL QUEUE COUNT   task layer: COUNT no-op tasks (demo.echo, no result) sent in batches
//   amqp-tasks-bench roundtrip URL QUEUE COUNT   task layer: send COUNT tasks, await every result
//   amqp-tasks-bench latency   URL QUEUE COUNT   task layer: one task at a time, send then await its result
//   amqp-tasks-bench concurrent URL QUEUE COUNT  task layer: BENCH_CALLERS (default 1,000) tasks each calling `send`
//                                                 (one confirm each, all pipelined on the client) until COUNT are sent
// QUEUE may be a comma-separated list for fill (the tasks are spread evenly). BENCH_BODY_BYTES=N makes each task's
// argument one string of N bytes instead of a number (the scaling benchmark's body sizes; raw_bench reads it too).
import AMQP
import AMQPTasks
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 5, let count = Int(arguments[4]) else {
    FileHandle.standardError.write(Data("usage: amqp-tasks-bench publish|fill|roundtrip|latency|concurrent URL QUEUE COUNT\n".utf8))
    exit(2)
}
let (mode, url, queue) = (arguments[1], arguments[2], arguments[3])
let clock = ContinuousClock()

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func emit(_ fields: [String: JSONValue]) { print(JSONValue.object(fields).jsonString) }

/// The argument of task `i`: the number itself, or with BENCH_BODY_BYTES a string of that many bytes.
let padding = ProcessInfo.processInfo.environment["BENCH_BODY_BYTES"].flatMap(Int.init).map { String(repeating: "x", count: $0) }
func argument(_ i: Int) -> JSONValue { padding.map(JSONValue.string) ?? .int(i) }

/// Task `i` of the benchmark (demo.echo). A padded argument gets a short argsrepr, as Celery's (1,024 characters at
/// most): the full repr of a large argument would not fit in the AMQP headers frame.
func task(_ client: TaskClient, _ i: Int, options: SendOptions) -> TaskMessage {
    var message = client.message("demo.echo", args: [argument(i)], options: options)
    if let padding { message.argsRepr = "('\(padding.prefix(16))...', ) [\(padding.utf8.count) bytes]" }
    return message
}

do {
    switch mode {
    case "publish":
        let connection = try await Connection.open(url: url)
        let channel = try await connection.openChannel()
        try await channel.declareQueue(queue, durable: true)
        try await channel.confirmSelect()
        let persistent = BasicProperties(
            contentType: "application/json", deliveryMode: BasicProperties.DeliveryMode.persistent, correlationId: "0")
        var start = clock.now
        for i in 0..<count {
            try await channel.publish(Data("[[\(i)], {}, {}]".utf8), routingKey: queue, properties: persistent)
        }
        let each = Double(count) / seconds(clock.now - start)
        let batch = (0..<count).map {
            OutgoingMessage(body: Data("[[\($0)], {}, {}]".utf8), routingKey: queue, properties: persistent)
        }
        start = clock.now
        let results = try await channel.publish(batch: batch)
        let pipelined = Double(count) / seconds(clock.now - start)
        guard results.allSatisfy({ (try? $0.get()) != nil }) else { throw TaskFailure(type: "BenchError", message: "a publish was not confirmed") }
        try await channel.purgeQueue(queue)
        await connection.close()
        emit(["publish_confirm_each": .double(each), "publish_pipelined": .double(pipelined)])
    case "fill":
        let client = try await TaskClient.connect(url: url)
        let channel = try await client.openChannel()
        let queues = queue.split(separator: ",").map(String.init)
        var sent = 0
        for (index, name) in queues.enumerated() {
            try await channel.declareQueue(name, durable: true)
            var options = SendOptions(queue: name)
            options.ignoreResult = true
            let end = count * (index + 1) / queues.count
            while sent < end {
                let chunk = (sent..<min(end, sent + 1000)).map { i -> TaskMessage in
                    var m = task(client, i, options: options)
                    m.ignoreResult = true
                    return m
                }
                let results = try await client.sendBatch(chunk, options: options)
                sent += results.count
            }
        }
        await client.close()
        emit(["filled": .int(sent)])
    case "roundtrip", "latency":
        let client = try await TaskClient.connect(url: url)
        let options = SendOptions(queue: queue)
        if mode == "roundtrip" {
            let start = clock.now
            var ids: [String] = []
            var sent = 0
            while sent < count {
                let chunk = (sent..<min(count, sent + 1000)).map { task(client, $0, options: options) }
                for result in try await client.sendBatch(chunk, options: options) { ids.append(try result.get()) }
                sent += chunk.count
            }
            for id in ids { _ = try await client.result(for: id, timeout: .seconds(300)) }
            emit(["roundtrip_per_s": .double(Double(count) / seconds(clock.now - start)), "received": .int(ids.count)])
        } else {
            var latencies: [Double] = []
            for i in 0..<count {
                let start = clock.now
                let message = task(client, i, options: options)
                try await client.send(message, options: options)
                let id = message.id
                _ = try await client.result(for: id, timeout: .seconds(60))
                latencies.append(seconds(clock.now - start) * 1000)
            }
            latencies.sort()
            emit([
                "p50_ms": .double(latencies[count / 2]), "p90_ms": .double(latencies[count * 9 / 10]),
                "p99_ms": .double(latencies[count * 99 / 100]),
            ])
        }
        await client.close()
    case "concurrent":
        let client = try await TaskClient.connect(url: url)
        let channel = try await client.openChannel()
        try await channel.declareQueue(queue, durable: true)
        let callers = ProcessInfo.processInfo.environment["BENCH_CALLERS"].flatMap(Int.init) ?? 1000
        var unrecorded = SendOptions(queue: queue)
        unrecorded.ignoreResult = true
        let options = unrecorded
        let start = clock.now
        let sent = try await withThrowingTaskGroup(of: Int.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    let share = count * (caller + 1) / callers - count * caller / callers
                    for i in 0..<share { try await client.send("demo.echo", args: [argument(i)], options: options) }
                    return share
                }
            }
            var total = 0
            for try await share in group { total += share }
            return total
        }
        let rate = Double(sent) / seconds(clock.now - start)
        try await channel.purgeQueue(queue)
        await client.close()
        emit(["sends_per_s": .double(rate), "sent": .int(sent), "callers": .int(callers)])
    default:
        FileHandle.standardError.write(Data("amqp-tasks-bench: unknown mode \(mode)\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("amqp-tasks-bench: \(error)\n".utf8))
    exit(1)
}

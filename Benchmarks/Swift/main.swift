// The Swift side of Benchmarks/run: the same scenarios as Benchmarks/raw/raw_bench.c, through the AMQP wrapper
// and the task layer. Every mode prints one JSON line.
//
//   amqp-tasks-bench publish   URL QUEUE COUNT   wrapper: persistent publishes, each confirm awaited, then pipelined
//   amqp-tasks-bench fill      URL QUEUE COUNT   task layer: COUNT no-op tasks (demo.echo, no result) sent in batches
//   amqp-tasks-bench roundtrip URL QUEUE COUNT   task layer: send COUNT tasks, await every result
//   amqp-tasks-bench latency   URL QUEUE COUNT   task layer: one task at a time, send then await its result
import AMQP
import AMQPTasks
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 5, let count = Int(arguments[4]) else {
    FileHandle.standardError.write(Data("usage: amqp-tasks-bench publish|fill|roundtrip|latency URL QUEUE COUNT\n".utf8))
    exit(2)
}
let (mode, url, queue) = (arguments[1], arguments[2], arguments[3])
let clock = ContinuousClock()

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func emit(_ fields: [String: JSONValue]) { print(JSONValue.object(fields).jsonString) }

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
        try await channel.declareQueue(queue, durable: true)
        var options = SendOptions(queue: queue)
        options.ignoreResult = true
        var sent = 0
        while sent < count {
            let chunk = (sent..<min(count, sent + 1000)).map { i -> TaskMessage in
                var m = client.message("demo.echo", args: [.int(i)], options: options)
                m.ignoreResult = true
                return m
            }
            let results = try await client.sendBatch(chunk, options: options)
            sent += results.count
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
                let chunk = (sent..<min(count, sent + 1000)).map { client.message("demo.echo", args: [.int($0)], options: options) }
                for result in try await client.sendBatch(chunk, options: options) { ids.append(try result.get()) }
                sent += chunk.count
            }
            for id in ids { _ = try await client.result(for: id, timeout: .seconds(300)) }
            emit(["roundtrip_per_s": .double(Double(count) / seconds(clock.now - start)), "received": .int(ids.count)])
        } else {
            var latencies: [Double] = []
            for i in 0..<count {
                let start = clock.now
                let id = try await client.send("demo.echo", args: [.int(i)], options: options)
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
    default:
        FileHandle.standardError.write(Data("amqp-tasks-bench: unknown mode \(mode)\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("amqp-tasks-bench: \(error)\n".utf8))
    exit(1)
}

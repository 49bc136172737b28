// A small Swift service that sends tasks and awaits their results: what Deploy/quickstart runs beside the CLI.
// The broker URL comes from AMQP_URL; the tasks go to the queue named by the first argument (default: celery).
import AMQPTasks
import AMQPTasksDemo
import Foundation

let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
let queue = CommandLine.arguments.dropFirst().first ?? "celery"

do {
    let client = try await TaskClient.connect(url: url)
    let options = SendOptions(queue: queue)

    // Ten additions in flight at once, typed arguments, one confirmed publish each.
    let ids = try await withThrowingTaskGroup(of: (Int, String).self) { group in
        for i in 1...10 {
            group.addTask { (i, try await client.send(DemoTasks.Add(x: Double(i), y: Double(i * i)), options: options)) }
        }
        var sent: [(Int, String)] = []
        for try await pair in group { sent.append(pair) }
        return sent.sorted { $0.0 < $1.0 }
    }
    for (i, id) in ids {
        let value = try await client.value(for: id, timeout: .seconds(30))
        print("swift client: demo.add(\(i), \(i * i)) = \(value.jsonString)   [task \(id)]")
    }
    let failed = try await client.send("demo.fail", args: ["no such customer"], options: options)
    do {
        _ = try await client.value(for: failed, timeout: .seconds(30))
    } catch let failure as TaskFailure {
        print("swift client: demo.fail raised \(failure.type): \(failure.message)   [task \(failed)]")
    }
    await client.close()
} catch {
    FileHandle.standardError.write(Data("amqp-tasks-example: \(error)\n".utf8))
    exit(1)
}

// The client side of the fault tests (Tests/InteropTests/test_faults.py, test_cluster.py): sends COUNT `demo.trace`
// tasks through TaskClient while the test breaks things (restarts the broker, closes connections, kills nodes),
// waits until every task id it was told was sent is answered, and prints one JSON line with what it saw:
//
//   amqp-tasks-fault-client URLS QUEUE COUNT [BATCH] [TIMEOUT_S] [SEND_WINDOW_S]
//
// QUEUE is declared (durable, classic) unless it exists. TIMEOUT_S bounds the wait for the results; SEND_WINDOW_S
// (default TIMEOUT_S) is how long a send keeps reconnecting before it fails with SendFailure (exit status 1).
//
//   {"sent": 10000, "answered": 10000, "missing": [], "extra_results": 3, "redelivered_extras": 3,
//    "republished": 0, "failed_sends": 0, "seconds": 21.4}
//
// `extra_results` counts results beyond the first per task: each must be explained by a redelivery (the worker
// saw `redelivered`) or by a publish the client repeated after a lost connection (`republished`).
import AMQP
import AMQPTasks
import Foundation
import Logging

let arguments = CommandLine.arguments
guard arguments.count >= 4, let count = Int(arguments[3]) else {
    FileHandle.standardError.write(
        Data("usage: amqp-tasks-fault-client URLS QUEUE COUNT [BATCH] [TIMEOUT_S] [SEND_WINDOW_S]\n".utf8))
    exit(2)
}
let (urls, queue) = (arguments[1], arguments[2])
let batch = arguments.count > 4 ? Int(arguments[4]) ?? 100 : 100
let timeout = arguments.count > 5 ? Double(arguments[5]) ?? 300 : 300
let sendWindow = arguments.count > 6 ? Double(arguments[6]) ?? timeout : timeout

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .notice
    return handler
}

func emit(_ fields: [String: JSONValue]) { print(JSONValue.object(fields).jsonString) }

let started = ContinuousClock.now
do {
    let client = try await TaskClient.connect(
        url: urls, reconnect: ReconnectPolicy(sendRetryWindow: sendWindow, initialDelay: 0.2, maxDelay: 2))
    try await Topology.declareQueueIfMissing(queue, on: client.openChannel().connection)
    let options = SendOptions(queue: queue)
    var sent: [String] = []
    var failedSends = 0
    var next = 0
    while next < count {
        let chunk = (next..<min(count, next + batch)).map { client.message("demo.trace", args: [.int($0)], options: options) }
        for result in try await client.sendBatch(chunk, options: options) {
            switch result {
            case .success(let id): sent.append(id)
            case .failure(let error):
                failedSends += 1
                FileHandle.standardError.write(Data("fault-client: not sent: \(error)\n".utf8))
            }
        }
        next += chunk.count
    }
    FileHandle.standardError.write(Data("fault-client: \(sent.count) tasks confirmed; waiting for their results\n".utf8))
    var missing: [String] = []
    // TIMEOUT_S bounds the whole wait, not each result: when workers are gone, the run ends in TIMEOUT_S.
    let deadline = ContinuousClock.now + .seconds(timeout)
    for id in sent {
        do {
            let left = max(Duration.milliseconds(100), deadline - ContinuousClock.now)
            _ = try await client.states(for: id, timeout: left)
        } catch {
            missing.append(id)
        }
    }
    // Results that come twice (a redelivered task run again) may trail the first ones.
    try await Task.sleep(for: .seconds(2))
    var extra = 0
    var redeliveredExtras = 0
    let unanswered = Set(missing)
    for id in sent where !unanswered.contains(id) {
        let finals = try await client.states(for: id, timeout: .seconds(1)).filter { $0.status.isFinal }
        guard finals.count > 1 else { continue }
        extra += finals.count - 1
        redeliveredExtras += min(finals.count - 1, finals.filter { $0.result["redelivered"] == .bool(true) }.count)
    }
    let elapsed = ContinuousClock.now - started
    emit([
        "sent": .int(sent.count), "answered": .int(sent.count - missing.count),
        "missing": .array(missing.prefix(20).map(JSONValue.string)), "extra_results": .int(extra),
        "redelivered_extras": .int(redeliveredExtras), "republished": .int(client.republishedCount),
        "failed_sends": .int(failedSends),
        "seconds": .double(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18),
    ])
    await client.close()
} catch {
    FileHandle.standardError.write(Data("fault-client: \(error)\n".utf8))
    exit(1)
}

// The client side of the fault tests (Tests/InteropTests/test_faults.py, test_worker_kills.py, test_cluster.py):
// sends COUNT tasks through TaskClient while the test breaks things (restarts the broker, closes connections, kills
// workers or nodes), waits until every task id it was told was sent is answered, checks every answer, and prints one
// JSON line with what it saw:
//
//   amqp-tasks-fault-client URLS QUEUE COUNT [BATCH] [TIMEOUT_S] [SEND_WINDOW_S]
//
// QUEUE is declared (durable, classic) unless it exists. TIMEOUT_S bounds the wait for the results; SEND_WINDOW_S
// (default TIMEOUT_S) is how long a send keeps reconnecting before it fails with TaskClientError.timedOut (exit status 1).
//
// Environment (all optional):
//   FAULT_CLIENT_KINDS        comma-separated task kinds, task n gets kind n mod the count (default "trace"):
//                             trace      demo.trace(n)                  SUCCESS {"value": n, ...}
//                             countdown  demo.trace(n), countdown 1 + n mod 4 s   SUCCESS {"value": n, ...} (via
//                                        delay queues, whose messages then expire at every moment of a run)
//                             retry      demo.trace_retry(n, 1)         RETRY, then SUCCESS {"value": n, "retries": 1}
//                             exec       fault.exec(n)                  SUCCESS with the handler's stdin echoed:
//                                        {"id": the task id, "args": [n], ...} (the worker runs it with --exec)
//                             fail       demo.fail("fault-client task n")  FAILURE ValueError with that message
//                             when       demo.when(n), countdown (n * 7919 mod 21000) ms, 0-20 s   SUCCESS
//                                        {"value": n, "started": …, "eta": …} with started not before eta
//   FAULT_CLIENT_PAUSE_AFTER  comma-separated batch numbers (1-based): once such a batch is confirmed, the client
//                             prints "fault-client: paused after batch N" on stderr and waits for a line on stdin,
//                             so the test breaks something at a known point of the run, not after a guessed time.
//   FAULT_CLIENT_AWAIT_DRAIN  "1": once every task is answered, print "fault-client: all answered; waiting for a
//                             line on stdin before counting copies" and wait for that line (the test sends it when
//                             the queues are empty, so every second answer has arrived). When some task is not
//                             answered, it reports at once. Without it the client waits 2 s for trailing copies,
//                             which can only undercount them.
//
//   {"sent": 10000, "answered": 10000, "missing": [], "success": 8000, "failure": 2000, "revoked": 0,
//    "expected_failures": 2000, "kinds": {"trace": 5000, ...}, "wrong_answers": [], "wrong_answer_count": 0,
//    "duplicates": [{"id": "...", "batch": 12, "finals": 2, "redelivered_finals": 1}],
//    "republished_by_batch": {"12": 3}, "extra_results": 3, "redelivered_extras": 3, "republished": 3,
//    "failed_sends": 0, "reply_queue": "amqp-tasks.reply.…", "seconds": 21.4}
//
// `wrong_answers` lists answers (every final state of every task, copies included) whose status or value is not the
// one its kind must give. `duplicates` lists the tasks answered more than once: the test explains each task's extra
// answers by that task's redeliveries (`redelivered_finals`, or the worker logs) and by the publishes the client
// repeated in that task's batch (`republished_by_batch`).
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
let environment = ProcessInfo.processInfo.environment
let pauses = Set((environment["FAULT_CLIENT_PAUSE_AFTER"] ?? "").split(separator: ",").compactMap { Int($0) })
let awaitDrain = environment["FAULT_CLIENT_AWAIT_DRAIN"] == "1"

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .notice
    return handler
}

func say(_ text: String) { FileHandle.standardError.write(Data("fault-client: \(text)\n".utf8)) }
func emit(_ fields: [String: JSONValue]) { print(JSONValue.object(fields).jsonString) }

/// Waits for one line on stdin without holding a thread of the cooperative pool; nil at end of input.
func readControlLine() async -> String? {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: readLine()) }
    }
}

/// One kind of task the client sends, and the one answer it must get.
enum Kind: String, CaseIterable {
    case trace, countdown, retry, exec, fail, when

    func message(_ n: Int, client: TaskClient) -> TaskMessage {
        var options = SendOptions(queue: queue)
        switch self {
        case .trace: return client.message("demo.trace", args: [.int(n)], options: options)
        case .countdown:
            options.countdown = .seconds(1 + n % 4)
            return client.message("demo.trace", args: [.int(n)], options: options)
        case .retry: return client.message("demo.trace_retry", args: [.int(n), 1], options: options)
        case .exec: return client.message("fault.exec", args: [.int(n)], options: options)
        case .fail: return client.message("demo.fail", args: [.string(failMessage(n))], options: options)
        case .when:
            options.countdown = .milliseconds((n &* 7919) % 21_000)
            return client.message("demo.when", args: [.int(n)], options: options)
        }
    }

    func failMessage(_ n: Int) -> String { "fault-client task \(n)" }

    /// Why `answer` is not the answer of task `n` (id `id`), or nil when it is.
    func problem(with answer: ResultMessage, n: Int, id: String) -> String? {
        switch self {
        case .trace, .countdown, .retry:
            guard answer.status == .success else { return "\(answer.status.rawValue) instead of SUCCESS" }
            guard answer.result["value"] == .int(n) else { return "value \(answer.result.jsonString), not \(n)" }
            if self == .retry, answer.result["retries"] != .int(1) {
                return "answered after \(answer.result["retries"]?.jsonString ?? "no") retries, not 1"
            }
        case .exec:
            guard answer.status == .success else { return "\(answer.status.rawValue) instead of SUCCESS" }
            guard answer.result["id"] == .string(id), answer.result["args"] == .array([.int(n)]) else {
                return "the answer of another input: \(answer.result.jsonString)"
            }
        case .when:
            guard answer.status == .success else { return "\(answer.status.rawValue) instead of SUCCESS" }
            guard answer.result["value"] == .int(n) else { return "value \(answer.result.jsonString), not \(n)" }
            guard let started = answer.result["started"]?.doubleValue,
                let eta = answer.result["eta"]?.stringValue.flatMap(CeleryTime.parse)
            else { return "no start and eta in \(answer.result.jsonString)" }
            if started < eta.timeIntervalSince1970 { return "started \(started), before its eta \(eta.timeIntervalSince1970)" }
        case .fail:
            guard answer.status == .failure else { return "\(answer.status.rawValue) instead of FAILURE" }
            guard answer.failure?.type == "ValueError", answer.failure?.message == failMessage(n) else {
                return "the failure of another task: \(answer.result.jsonString)"
            }
        }
        return nil
    }
}

let kindNames = (environment["FAULT_CLIENT_KINDS"] ?? "trace").split(separator: ",").map(String.init)
let kinds = kindNames.compactMap(Kind.init(rawValue:))
guard !kinds.isEmpty, kinds.count == kindNames.count else {
    say("FAULT_CLIENT_KINDS must list kinds among \(Kind.allCases.map(\.rawValue).joined(separator: ", ")); got '\(kindNames.joined(separator: ","))'")
    exit(2)
}

/// What the client knows of one confirmed task.
struct Sent {
    let id: String
    let n: Int
    let kind: Kind
    let batch: Int
}

let started = ContinuousClock.now
do {
    let client = try await TaskClient.connect(
        url: urls,
        reconnect: ReconnectPolicy(
            sendRetryWindow: .clampedSeconds(sendWindow), initialDelay: .milliseconds(200), maxDelay: .seconds(2)))
    try await Topology.declareQueueIfMissing(queue, on: client.openChannel().connection)
    say("reply queue \(client.replyQueue)")
    var sent: [Sent] = []
    var failedSends = 0
    var republishedByBatch: [String: JSONValue] = [:]
    var next = 0
    var batchNumber = 0
    while next < count {
        batchNumber += 1
        let numbers = Array(next..<min(count, next + batch))
        let chunk = numbers.map { kinds[$0 % kinds.count].message($0, client: client) }
        let republishedBefore = client.republishedCount
        let results = try await client.sendBatch(chunk, options: SendOptions(queue: queue))
        for (n, result) in zip(numbers, results) {
            switch result {
            case .success(let id): sent.append(Sent(id: id, n: n, kind: kinds[n % kinds.count], batch: batchNumber))
            case .failure(let error):
                failedSends += 1
                say("not sent: \(error)")
            }
        }
        let republished = client.republishedCount - republishedBefore
        if republished > 0 { republishedByBatch[String(batchNumber)] = .int(republished) }
        next += chunk.count
        if pauses.contains(batchNumber) {
            say("paused after batch \(batchNumber)")
            _ = await readControlLine()
            say("resumed after batch \(batchNumber)")
        }
    }
    say("\(sent.count) tasks confirmed; waiting for their results")
    var missing: [String] = []
    // TIMEOUT_S bounds the whole wait, not each result: when workers are gone, the run ends in TIMEOUT_S.
    let deadline = ContinuousClock.now + .seconds(timeout)
    for task in sent {
        do {
            let left = max(Duration.milliseconds(100), deadline - ContinuousClock.now)
            _ = try await client.states(for: task.id, timeout: left)
        } catch {
            missing.append(task.id)
        }
    }
    if awaitDrain && missing.isEmpty {
        say("all answered; waiting for a line on stdin before counting copies")
        _ = await readControlLine()
    } else {
        // Results that come twice (a redelivered task run again) may trail the first ones.
        try await Task.sleep(for: .seconds(2))
    }
    var statusCounts: [TaskState: Int] = [:]
    var wrongAnswers: [String] = []
    var duplicates: [JSONValue] = []
    var extra = 0
    var redeliveredExtras = 0
    let unanswered = Set(missing)
    for task in sent where !unanswered.contains(task.id) {
        let finals = try await client.states(for: task.id, timeout: .seconds(1)).filter { $0.status.isFinal }
        if let first = finals.first { statusCounts[first.status, default: 0] += 1 }
        for answer in finals {
            if let problem = task.kind.problem(with: answer, n: task.n, id: task.id) {
                wrongAnswers.append("task \(task.n) (\(task.kind.rawValue), \(task.id)): \(problem)")
            }
        }
        guard finals.count > 1 else { continue }
        let redelivered = finals.filter { $0.result["redelivered"] == .bool(true) }.count
        extra += finals.count - 1
        redeliveredExtras += min(finals.count - 1, redelivered)
        duplicates.append([
            "id": .string(task.id), "batch": .int(task.batch), "finals": .int(finals.count),
            "redelivered_finals": .int(redelivered),
        ])
    }
    var kindCounts: [String: JSONValue] = [:]
    for task in sent { kindCounts[task.kind.rawValue] = .int((kindCounts[task.kind.rawValue]?.intValue ?? 0) + 1) }
    let elapsed = ContinuousClock.now - started
    emit([
        "sent": .int(sent.count), "answered": .int(sent.count - missing.count),
        "missing": .array(missing.prefix(20).map(JSONValue.string)),
        "success": .int(statusCounts[.success] ?? 0), "failure": .int(statusCounts[.failure] ?? 0),
        "revoked": .int(statusCounts[.revoked] ?? 0),
        "expected_failures": .int(sent.filter { $0.kind == .fail }.count), "kinds": .object(kindCounts),
        "wrong_answers": .array(wrongAnswers.prefix(20).map(JSONValue.string)),
        "wrong_answer_count": .int(wrongAnswers.count),
        "duplicates": .array(duplicates), "republished_by_batch": .object(republishedByBatch),
        "extra_results": .int(extra), "redelivered_extras": .int(redeliveredExtras),
        "republished": .int(client.republishedCount), "failed_sends": .int(failedSends),
        "reply_queue": .string(client.replyQueue),
        "seconds": .double(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18),
    ])
    await client.close()
} catch {
    say("\(error)")
    exit(1)
}

import AMQP
import AMQPTasks
import Foundation
import Testing

/// User middleware on a real worker and broker: it sees every task before and after, can reject one (it ends in
/// `<queue>.dead` with the middleware's reason) and can turn a failure into a retry.
@Suite struct MiddlewareTests {
    /// Writes down each hook it sees, in order.
    struct Recorder: TaskMiddleware {
        let log: HookLog

        func received(_ task: TaskContext) async throws { await log.add("\(task.taskId) received") }
        func willRun(_ task: TaskContext) async throws { await log.add("\(task.taskId) willRun") }
        func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue {
            await log.add("\(task.taskId) run")
            return try await next(task)
        }
        func recorded(_ outcome: TaskOutcome, of task: TaskContext) async {
            await log.add("\(task.taskId) recorded \(Self.name(outcome))")
        }
        func rejected(_ message: ReceivedMessage, because rejection: TaskRejection) async {
            await log.add("\(rejection.taskId ?? "?") rejected \(rejection.reason)")
        }

        static func name(_ outcome: TaskOutcome) -> String {
            switch outcome {
            case .succeeded: "succeeded"
            case .failed: "failed"
            case .retried: "retried"
            case .revoked(let reason): "revoked \(reason.rawValue)"
            case .rejected(let rejection): "rejected \(rejection.reason)"
            case .deferred: "deferred"
            }
        }
    }

    actor HookLog {
        private(set) var lines: [String] = []
        func add(_ line: String) { lines.append(line) }
        func lines(of id: String) -> [String] {
            lines.filter { $0.hasPrefix(id + " ") }.map { String($0.dropFirst(id.count + 1)) }
        }
    }

    @Test func aMiddlewareSeesEveryTaskBeforeAndAfter() async throws {
        let queue = uniqueQueue("middleware")
        let log = HookLog()
        let worker = try await RunningWorker.start(queues: [queue], middleware: [Recorder(log: log)])
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)

        let add = try await client.send("demo.add", args: [2, 3], options: options)
        #expect(try await client.value(for: add, timeout: .seconds(30)) == 5)
        let fail = try await client.send("demo.fail", args: ["no"], options: options)
        #expect(try await client.result(for: fail, timeout: .seconds(30)).status == .failure)
        let unknown = try await client.send("no.such.task", options: options)
        #expect(try await client.result(for: unknown, timeout: .seconds(30)).status == .failure)
        var expired = TaskMessage(name: "demo.add", args: [1, 1])
        expired.expires = CeleryTime.format(Date().addingTimeInterval(-60))
        expired.replyTo = client.replyQueue
        try await client.send(expired, options: options)
        #expect(try await client.result(for: expired.id, timeout: .seconds(30)).status == .revoked)
        // A message that never becomes a task: seen by `rejected` alone.
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        try await channel.publish(
            Data("{not json".utf8), routingKey: queue,
            properties: BasicProperties(contentType: "application/json", headers: ["id": "garbage-1", "task": "demo.add"]))
        _ = try await BadInputTests.waitForDeadLetter(in: queue, on: channel)
        // `recorded` comes after the outcome is recorded, before the ack: wait for it.
        for _ in 0..<300 where await log.lines(of: "garbage-1").isEmpty { try await Task.sleep(for: .milliseconds(50)) }

        #expect(await log.lines(of: add) == ["received", "willRun", "run", "recorded succeeded"])
        #expect(await log.lines(of: fail) == ["received", "willRun", "run", "recorded failed"])
        #expect(await log.lines(of: unknown) == ["received", "recorded rejected unknown-task"])
        #expect(await log.lines(of: expired.id) == ["received", "recorded revoked expired"])
        #expect(await log.lines(of: "garbage-1") == ["rejected invalid-json"])
        try await worker.stop()
        await client.close()
        try await channel.deleteQueue(DeadLetters.name(for: queue))
        await connection.close()
    }

    /// Refuses tasks whose name starts with `admin.` unless they carry a token.
    struct Gatekeeper: TaskMiddleware {
        func willRun(_ task: TaskContext) async throws {
            if task.taskName.hasPrefix("admin."), task.message.kwargs["token"] == nil {
                throw TaskRejection(reason: "unauthorised", message: "admin tasks need a token")
            }
        }
    }

    @Test func aMiddlewareCanRejectATaskToTheDeadLetterQueueWithItsReason() async throws {
        let queue = uniqueQueue("reject")
        let runs = RunLog()
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("admin.wipe") { task in
                    await runs.record(task.taskId)
                    return "wiped"
                }
            }, middleware: [Gatekeeper()])
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)

        let refused = try await client.send("admin.wipe", options: options)
        let answer = try await client.result(for: refused, timeout: .seconds(30))
        #expect(answer.status == .failure)
        #expect(answer.failure?.type == "TaskRejected")
        #expect(answer.failure?.message == "admin tasks need a token")
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        let dead = try await BadInputTests.waitForDeadLetter(in: queue, on: channel)
        #expect(dead.properties.headers?[DeadLetters.Header.reason] == "unauthorised")
        #expect(dead.properties.headers?[DeadLetters.Header.error] == "admin tasks need a token")
        #expect(dead.properties.correlationId == refused)
        #expect(await runs.count(refused) == 0, "a rejected task never runs")

        let allowed = try await client.send("admin.wipe", kwargs: ["token": "t"], options: options)
        #expect(try await client.value(for: allowed, timeout: .seconds(30)) == "wiped")
        #expect(try await channel.inspectQueue(queue).messageCount == 0)
        try await worker.stop()
        await client.close()
        try await channel.deleteQueue(DeadLetters.name(for: queue))
        await connection.close()
    }

    /// Turns a `ConnectionRefused` failure into a retry after one second.
    struct RetryOnConnectionRefused: TaskMiddleware {
        func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue {
            do {
                return try await next(task)
            } catch let failure as TaskFailure where failure.type == "ConnectionRefused" {
                throw TaskRetry(countdown: .seconds(1), reason: failure)
            }
        }
    }

    @Test func aMiddlewareCanTurnAFailureIntoARetry() async throws {
        let queue = uniqueQueue("retry")
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("fetch.page") { task in
                    if task.retries == 0 { throw TaskFailure(type: "ConnectionRefused", message: "no server yet") }
                    return .int(task.retries)
                }
            }, middleware: [RetryOnConnectionRefused()])
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("fetch.page", options: SendOptions(queue: queue))
        let states = try await client.states(for: id, timeout: .seconds(30))
        #expect(states.map(\.status) == [.retry, .success])
        #expect(try await client.value(for: id, timeout: .seconds(30)) == 1)
        try await worker.stop()
        await client.close()
    }
}

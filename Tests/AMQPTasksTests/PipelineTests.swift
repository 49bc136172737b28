@testable import AMQPTasks
import AMQP
import Foundation
import Testing

/// The per-task path (decode → admit → run → record) without a broker, through `TaskTestRunner` and the
/// in-memory outbox: what each kind of message becomes, in which order middleware is called, and that an outcome
/// that cannot be recorded is an error (the worker then requeues the task), never an ack.
@Suite struct PipelineTests {
    static func registry() throws -> TaskRegistry {
        var registry = TaskRegistry()
        try registry.register("add") { task in
            .int((task.message.args.first?.intValue ?? 0) + (task.message.args.dropFirst().first?.intValue ?? 0))
        }
        try registry.register("fail") { _ in throw TaskFailure(type: "ValueError", message: "bad") }
        try registry.register("retry") { task in throw TaskRetry(countdown: .seconds(3), maxRetries: 1) }
        try registry.register("hang") { _ in
            try await Task.sleep(for: .seconds(3600))
            return .null
        }
        return registry
    }

    @Test func aSuccessIsRecordedWithItsFollowUpTasks() async throws {
        var message = TaskMessage(name: "add", args: [2, 3])
        message.replyTo = TaskTestRunner.replyQueue
        message.embed.callbacks = [TaskSignature("add", args: [10]).json]
        let report = try await TaskTestRunner(registry: try Self.registry()).run(message)
        #expect(report.result == 5)
        #expect(report.results.map(\.status) == [.success])
        #expect(report.sentTasks.map(\.name) == ["add"])
        #expect(report.sentTasks.first?.args == [5, 10], "a link gets the result first")
        #expect(report.sentTasks.first?.parentId == message.id)
    }

    @Test func aFailureIsRecordedAsFailure() async throws {
        let report = try await TaskTestRunner(registry: try Self.registry()).run("fail")
        guard case .failed(let failure, let runtime) = report.outcome else {
            Issue.record("expected a failure, got \(String(describing: report.outcome))")
            return
        }
        #expect(failure == TaskFailure(type: "ValueError", message: "bad"))
        #expect(runtime != nil)
        #expect(report.results.map(\.status) == [.failure])
    }

    @Test func aRetryIsParkedWithItsCountdownUntilNoneAreLeft() async throws {
        let runner = TaskTestRunner(registry: try Self.registry())
        let first = try await runner.run("retry")
        guard case .retried(_, let delay, let retries, _) = first.outcome else {
            Issue.record("expected a retry, got \(String(describing: first.outcome))")
            return
        }
        #expect(delay == .seconds(3))
        #expect(retries == 1)
        #expect(first.results.map(\.status) == [.retry])
        #expect(first.parked.count == 1)
        let again = try #require(first.parked.first?.task)
        #expect(again.retries == 1)
        let second = try await runner.run(
            { var m = again; m.eta = nil; return m }())
        guard case .failed = second.outcome else {
            Issue.record("expected a failure once retries are used up, got \(String(describing: second.outcome))")
            return
        }
        #expect(second.parked.isEmpty)
    }

    @Test func messagesThatAreNotTasksGoToTheDeadLetterQueueWithTheirReason() async throws {
        let runner = TaskTestRunner(
            registry: try Self.registry(),
            configuration: { var c = WorkerConfiguration(); c.maxMessageSize = 100; return c }())
        func received(_ body: String, contentType: String = "application/json", problem: String? = nil)
            -> ReceivedMessage
        {
            ReceivedMessage(
                body: Data(body.utf8),
                properties: BasicProperties(
                    contentType: contentType, headers: ["id": "x-1", "task": "add"], correlationId: "x-1",
                    replyTo: "caller"),
                queue: "celery", contentProblem: problem)
        }
        let cases: [(ReceivedMessage, String)] = [
            (received("{nope"), "invalid-json"),
            (received("[[],{},{}]", contentType: "application/x-python-serialize"), "unsupported-content-type"),
            (received(String(repeating: " ", count: 101)), "message-too-large"),
            (received("[[],{},{}]", problem: "headers nested deeper than 64 levels"), "malformed-headers"),
        ]
        for (message, reason) in cases {
            let report = try await runner.run(message)
            #expect(report.outcome == nil, "\(reason)")
            #expect(report.deadLetters.map(\.reason) == [reason])
        }
    }

    @Test func unknownExpiredRevokedAndFutureTasksAreNotRun() async throws {
        let runner = TaskTestRunner(registry: try Self.registry())
        let unknown = try await runner.run("no.such.task")
        #expect(unknown.deadLetters.map(\.reason) == ["unknown-task"])
        #expect(unknown.results.first?.failure == .notRegistered("no.such.task"))

        var expired = TaskMessage(name: "add", args: [1, 1])
        expired.replyTo = TaskTestRunner.replyQueue
        expired.expires = CeleryTime.format(Date().addingTimeInterval(-1))
        let expiredReport = try await runner.run(expired)
        #expect(expiredReport.results.map(\.status) == [.revoked])
        guard case .revoked(.expired) = expiredReport.outcome else {
            Issue.record("expected expired, got \(String(describing: expiredReport.outcome))")
            return
        }

        var revoked = TaskMessage(name: "add", args: [1, 1])
        revoked.replyTo = TaskTestRunner.replyQueue
        runner.revoke([revoked.id])
        let revokedReport = try await runner.run(revoked)
        guard case .revoked(.revoked) = revokedReport.outcome else {
            Issue.record("expected revoked, got \(String(describing: revokedReport.outcome))")
            return
        }

        var later = TaskMessage(name: "add", args: [1, 1])
        later.eta = CeleryTime.format(Date().addingTimeInterval(100))
        let laterReport = try await runner.run(later)
        guard case .deferred(let step) = laterReport.outcome else {
            Issue.record("expected deferred, got \(String(describing: laterReport.outcome))")
            return
        }
        #expect(step == .seconds(100) || step == .seconds(101), "the whole seconds left, rounded up: \(step)")
        #expect(laterReport.parked.map(\.task.id) == [later.id])
    }

    @Test func aHardTimeLimitFailsAHandlerThatRunsTooLong() async throws {
        var message = TaskMessage(name: "hang")
        message.replyTo = TaskTestRunner.replyQueue
        message.timeLimit.hard = .milliseconds(200)
        let report = try await TaskTestRunner(registry: try Self.registry()).run(message)
        guard case .failed(let failure, _) = report.outcome else {
            Issue.record("expected a failure, got \(String(describing: report.outcome))")
            return
        }
        #expect(failure.type == "TimeLimitExceeded")
        #expect(failure.message == "0.2", "the limit in seconds, as Celery's TimeLimitExceeded says it")
    }

    /// Writes its name at each hook.
    struct Named: TaskMiddleware {
        let name: String
        let log: MiddlewareTests.HookLog
        func received(_ task: TaskContext) async throws { await log.add("received \(name)") }
        func willRun(_ task: TaskContext) async throws { await log.add("willRun \(name)") }
        func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue {
            await log.add("enter \(name)")
            let value = try await next(task)
            await log.add("leave \(name)")
            return value
        }
        func recorded(_ outcome: TaskOutcome, of task: TaskContext) async { await log.add("recorded \(name)") }
    }

    @Test func middlewareRunsInOrderAndTheFirstWrapsTheOthers() async throws {
        let log = MiddlewareTests.HookLog()
        let runner = TaskTestRunner(
            registry: try Self.registry(), middleware: [Named(name: "a", log: log), Named(name: "b", log: log)])
        _ = try await runner.run("add", args: [1, 2])
        let lines = await log.lines
        #expect(
            Array(lines.prefix(9)) == [
                "received a", "received b", "willRun a", "willRun b", "enter a", "enter b", "leave b", "leave a",
                "recorded b",
            ])
        #expect(lines.contains("recorded a"))
    }

    @Test func anOutcomeThatCannotBeRecordedIsAnErrorNotAnAck() async throws {
        let outbox = MemoryOutbox()
        outbox.failNextCall(with: AMQPError(.closed, operation: "basic.publish", message: "the channel closed"))
        let configuration = WorkerConfiguration()
        let pipeline = TaskPipeline(
            queue: "celery", configuration: configuration, registry: try Self.registry(), state: WorkerState(),
            middleware: [], outbox: outbox, logger: .init(label: "test"))
        var message = TaskMessage(name: "add", args: [1, 2])
        message.replyTo = "caller"
        let (properties, body) = message.encode()
        await #expect(throws: AMQPError.self) {
            try await pipeline.handle(ReceivedMessage(body: body, properties: properties, queue: "celery"))
        }
        #expect(outbox.published.isEmpty)
    }

    @Test func aTaskNameRegisteredTwiceThrows() throws {
        var registry = TaskRegistry()
        try registry.register("once") { _ in .null }
        #expect(throws: TaskRegistry.DuplicateName.self) { try registry.register("once") { _ in .int(2) } }
        #expect(throws: TaskRegistry.DuplicateName.self) {
            try registry.register("once", ClosureTaskHandler { _ in .int(3) })
        }
        #expect(registry.names == ["once"])
    }
}

import AMQP
import Foundation
import InMemoryTracing
import Synchronization
import Testing
import Tracing

@testable import AMQPTasks

/// Collects the spans a `TraceLogTracer` finishes: the in-memory tracer of these tests, one per test (suites run in
/// parallel in one process, so nothing here bootstraps the process-global tracer).
final class SpanCollector: Sendable {
    private let spans = Mutex<[TraceLogRecord]>([])
    var tracer: TraceLogTracer { TraceLogTracer { [self] record in spans.withLock { $0.append(record) } } }
    var finished: [TraceLogRecord] { spans.withLock { $0 } }

    /// The one finished span called `name`; fails the test when there is not exactly one.
    func span(_ name: String) throws -> TraceLogRecord {
        let matching = finished.filter { $0.name == name }
        guard matching.count == 1 else {
            throw TestFailure("\(matching.count) spans called \(name); finished: \(finished.map(\.name))")
        }
        return matching[0]
    }

    /// Waits until spans with all these names have finished (a safety-net deadline, not a timing assertion).
    func waitFor(_ names: [String]) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !Set(names).isSubset(of: Set(finished.map(\.name))) {
            guard ContinuousClock.now < deadline else {
                throw TestFailure("spans \(names) never all finished; finished: \(finished.map(\.name))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

extension TaskMessage {
    /// The W3C trace context this message carries, if any and well formed.
    var traceParent: TraceParent? { extraHeaders["traceparent"]?.stringValue.flatMap(TraceParent.init(header:)) }
}

@Suite struct TraceParentTests {
    @Test func aWellFormedHeaderIsReadAndWrittenBack() throws {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let parsed = try #require(TraceParent(header: header))
        #expect(parsed.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(parsed.spanID == "00f067aa0ba902b7")
        #expect(parsed.flags == 1)
        #expect(parsed.description == header)
        // A later version may append fields; its first four are read.
        #expect(TraceParent(header: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra")?.flags == 0)
    }

    @Test(arguments: [
        "", "garbage", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
    ])
    func aMalformedHeaderIsNoTraceParent(_ header: String) {
        #expect(TraceParent(header: header) == nil)
    }
}

/// Trace context through the worker's pipeline, in memory (`TaskTestRunner`): the handler's span continues the
/// message's context, and every task the worker publishes on its behalf carries the handler's trace.
@Suite struct TracingPipelineTests {
    static let incoming = TraceParent(header: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")!

    static func registry() throws -> TaskRegistry {
        var registry = TaskRegistry()
        try registry.register("trace.ok") { _ in .string("ok") }
        try registry.register("trace.fail") { _ in throw TaskFailure(type: "ValueError", message: "no") }
        try registry.register("trace.retry") { _ in
            throw TaskRetry(countdown: .seconds(1), reason: TaskFailure(type: "KeyError", message: "again"))
        }
        return registry
    }

    static func message(_ name: String, traceparent: String? = incoming.description) -> TaskMessage {
        var message = TaskMessage(name: name)
        message.replyTo = TaskTestRunner.replyQueue
        if let traceparent {
            message.extraHeaders["traceparent"] = .string(traceparent)
            message.extraHeaders["tracestate"] = .string("vendor=value")
        }
        return message
    }

    @Test func theHandlersSpanContinuesTheMessagesTraceAndItsLinkAndChainStepAreItsChildren() async throws {
        let spans = SpanCollector()
        let runner = TaskTestRunner(registry: try Self.registry(), tracer: spans.tracer)
        var message = Self.message("trace.ok")
        message.embed.callbacks = [TaskSignature("trace.link", options: ["queue": "links"]).json]
        message.embed.chain = [TaskSignature("trace.step").json]

        let report = try await runner.run(message)
        #expect(report.result == .string("ok"))

        let run = try spans.span("run/trace.ok")
        #expect(run.traceID == Self.incoming.traceID)
        #expect(run.parentSpanID == Self.incoming.spanID)
        #expect(run.kind == "consumer")
        #expect(run.attributes["celery.task_name"] == .string("trace.ok"))
        #expect(run.attributes["messaging.message.id"] == .string(message.id))
        #expect(run.attributes["celery.state"] == .string("SUCCESS"))
        #expect(report.sentTasks.map(\.name) == ["trace.link", "trace.step"])
        for sent in report.sentTasks {
            let publish = try spans.span("apply_async/\(sent.name)")
            #expect(publish.kind == "producer")
            #expect(publish.parentSpanID == run.spanID)
            #expect(publish.traceID == Self.incoming.traceID)
            // The message carries the publish span's context: a worker that takes it continues the same trace.
            #expect(sent.traceParent == TraceParent(traceID: publish.traceID, spanID: publish.spanID))
            #expect(sent.extraHeaders["tracestate"]?.stringValue == "vendor=value")
        }
        #expect(try spans.span("apply_async/trace.link").attributes["messaging.destination"] == .string("links"))
    }

    @Test func aRetryAndAnErrbackCarryTheHandlersTrace() async throws {
        let spans = SpanCollector()
        let runner = TaskTestRunner(registry: try Self.registry(), tracer: spans.tracer)

        let retried = try await runner.run(Self.message("trace.retry"))
        let copy = try #require(retried.parked.first?.task)
        let retryRun = try spans.span("run/trace.retry")
        #expect(retryRun.attributes["celery.state"] == .string("RETRY"))
        let retryPublish = try spans.span("apply_async/trace.retry")
        #expect(retryPublish.parentSpanID == retryRun.spanID)
        #expect(copy.traceParent == TraceParent(traceID: Self.incoming.traceID, spanID: retryPublish.spanID))
        // The retry runs as a child of the publish that sent it, in the same trace.
        _ = try await runner.run(copy)
        let runs = spans.finished.filter { $0.name == "run/trace.retry" }
        #expect(runs.count == 2)
        #expect(runs.last?.parentSpanID == retryPublish.spanID)
        #expect(runs.last?.attributes["celery.retries"] == .int(1))

        var failing = Self.message("trace.fail")
        failing.embed.errbacks = [TaskSignature("trace.on_error").json]
        let failed = try await runner.run(failing)
        let failRun = try spans.span("run/trace.fail")
        #expect(failRun.error != nil)
        #expect(failRun.attributes["celery.state"] == .string("FAILURE"))
        let errback = try #require(failed.sentTasks.first)
        #expect(errback.name == "trace.on_error")
        let errbackPublish = try spans.span("apply_async/trace.on_error")
        #expect(errbackPublish.parentSpanID == failRun.spanID)
        #expect(errback.traceParent == TraceParent(traceID: Self.incoming.traceID, spanID: errbackPublish.spanID))
    }

    /// Bad input: a malformed `traceparent` never fails the task; its span starts a new trace, and its follow-ups
    /// carry that new trace, not the garbage (nor the tracestate that came with it).
    @Test(arguments: [
        "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "00-" + String(repeating: "a", count: 300) + "-00f067aa0ba902b7-01",
    ])
    func aMalformedTraceparentStartsANewTraceAndTheTaskRuns(_ header: String) async throws {
        let spans = SpanCollector()
        let runner = TaskTestRunner(registry: try Self.registry(), tracer: spans.tracer)
        var message = Self.message("trace.ok", traceparent: header)
        message.embed.callbacks = [TaskSignature("trace.link").json]

        let report = try await runner.run(message)
        #expect(report.result == .string("ok"))
        let run = try spans.span("run/trace.ok")
        #expect(run.parentSpanID == nil)
        #expect(TraceParent(traceID: run.traceID, spanID: run.spanID) != nil)
        let link = try #require(report.sentTasks.first)
        #expect(link.traceParent?.traceID == run.traceID)
        #expect(link.extraHeaders["tracestate"] == nil)
    }

    /// A traceparent that is not even a string (a table, bytes that are not UTF-8) is no context either.
    @Test func aTraceparentOfAnotherTypeStartsANewTrace() async throws {
        let spans = SpanCollector()
        let runner = TaskTestRunner(registry: try Self.registry(), tracer: spans.tracer)
        for value: FieldValue in [.table(["a": .int32(1)]), .bytes([0xff, 0xfe]), .int64(7), .void] {
            var message = Self.message("trace.ok", traceparent: nil)
            message.extraHeaders["traceparent"] = value
            #expect(try await runner.run(message).result == .string("ok"))
        }
        #expect(spans.finished.count == 4)
        #expect(spans.finished.allSatisfy { $0.parentSpanID == nil })
    }

    /// With no tracer bootstrapped (the no-op one), tracing changes nothing: a retry keeps the context it came with.
    @Test func withoutATracerMessagesKeepTheContextTheyCarry() async throws {
        let runner = TaskTestRunner(registry: try Self.registry())
        let report = try await runner.run(Self.message("trace.retry"))
        let copy = try #require(report.parked.first?.task)
        #expect(copy.traceParent == Self.incoming)
        #expect(copy.extraHeaders["tracestate"]?.stringValue == "vendor=value")
    }

    /// Any tracer works, not only a W3C one: swift-distributed-tracing's `InMemoryTracer` propagates through its own
    /// headers.
    @Test func anyTracerPropagatesThroughItsOwnHeaders() async throws {
        let tracer = InMemoryTracer()
        let runner = TaskTestRunner(registry: try Self.registry(), tracer: tracer)
        var message = Self.message("trace.ok", traceparent: nil)
        message.embed.callbacks = [TaskSignature("trace.link").json]
        let report = try await runner.run(message)
        let run = try #require(tracer.finishedSpans.first { $0.operationName == "run/trace.ok" })
        let publish = try #require(tracer.finishedSpans.first { $0.operationName == "apply_async/trace.link" })
        #expect(publish.parentSpanID == run.spanID)
        let link = try #require(report.sentTasks.first)
        #expect(link.extraHeaders[InMemoryTracer.traceIDKey]?.stringValue == run.traceID)
        #expect(link.extraHeaders[InMemoryTracer.spanIDKey]?.stringValue == publish.spanID)
    }
}

/// The whole path on the real broker: a `TaskClient`'s send, the worker's handler span, a task the handler sends
/// through its own client, and a link the worker sends: one trace, each span the child of the one before.
@Suite struct TracingBrokerTests {
    @Test func aClientsTraceContinuesInTheWorkerAndInTheTasksItSends() async throws {
        let queue = uniqueQueue("tracing")
        let onward = uniqueQueue("tracing-onward")
        let spans = SpanCollector()
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.declareQueue(onward)
        let client = try await TaskClient.connect(url: Broker.url, tracer: spans.tracer)
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("trace.parent") { _ in
                    // Sent from inside the handler: a child of its span, through ServiceContext.current.
                    try await client.send("trace.child", options: SendOptions(queue: onward))
                    return .string("sent")
                }
            }, tracer: spans.tracer)

        var options = SendOptions(queue: queue)
        options.link = [TaskSignature("trace.link", options: ["queue": .string(onward)])]
        let id = try await client.send("trace.parent", options: options)
        #expect(try await client.value(for: id, timeout: .seconds(30)) == .string("sent"))
        try await spans.waitFor(["apply_async/trace.parent", "run/trace.parent", "apply_async/trace.child", "apply_async/trace.link"])

        let send = try spans.span("apply_async/trace.parent")
        let run = try spans.span("run/trace.parent")
        #expect(send.parentSpanID == nil)
        #expect(send.attributes["messaging.destination"] == .string(queue))
        #expect(run.traceID == send.traceID)
        #expect(run.parentSpanID == send.spanID)
        var onwardMessages: [String: TaskMessage] = [:]
        for _ in 0..<2 {
            let delivery = try #require(try await channel.get(queue: onward, autoAck: true))
            let message = try TaskMessage.decode(properties: delivery.properties, body: delivery.body)
            onwardMessages[message.name] = message
        }
        for name in ["trace.child", "trace.link"] {
            let publish = try spans.span("apply_async/\(name)")
            #expect(publish.traceID == send.traceID)
            #expect(publish.parentSpanID == run.spanID)
            #expect(onwardMessages[name]?.traceParent == TraceParent(traceID: send.traceID, spanID: publish.spanID))
        }

        try await worker.stop()
        await client.close()
        _ = try await channel.deleteQueue(onward)
        _ = try await channel.deleteQueue(queue)
        _ = try? await channel.deleteQueue(DeadLetters.name(for: queue))
        await connection.close()
    }
}

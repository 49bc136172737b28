import AMQP
import AMQPTasksDemo
import Foundation
import Metrics
import MetricsTestKit
import Testing

@testable import AMQPTasks

/// The worker's metrics middleware, in memory (`TaskTestRunner`) with swift-metrics' `TestMetrics`: outcomes per
/// task, queue and outcome; runtime, in-progress and publish-to-start timers; and the bound on the `task` label.
@Suite struct TaskMetricsTests {
    static let known: Set<String> = ["demo.add", "demo.fail", "demo.flaky"]

    func runner(_ metrics: TestMetrics) throws -> TaskTestRunner {
        var registry = TaskRegistry()
        try DemoTasks.register(in: &registry)
        return TaskTestRunner(
            registry: registry, middleware: [TaskMetricsMiddleware(knownTasks: Set(registry.names), factory: metrics)],
            queue: "metrics.q")
    }

    @Test func eachOutcomeIsCountedUnderItsTaskQueueAndOutcome() async throws {
        let metrics = TestMetrics()
        let runner = try runner(metrics)
        _ = try await runner.run("demo.add", args: [1, 2])
        _ = try await runner.run("demo.add", args: [3, 4])
        _ = try await runner.run("demo.fail", args: ["no"])
        _ = try await runner.run("demo.flaky", args: [1])
        _ = try await runner.run("no.such.task")
        var revoked = TaskMessage(name: "demo.add", args: [1, 1])
        revoked.replyTo = TaskTestRunner.replyQueue
        runner.revoke([revoked.id])
        _ = try await runner.run(revoked)
        _ = try await runner.run(ReceivedMessage(body: Data("not json".utf8), properties: BasicProperties(), queue: "metrics.q"))

        #expect(try count(metrics, task: "demo.add", outcome: "succeeded") == 2)
        #expect(try count(metrics, task: "demo.fail", outcome: "failed") == 1)
        #expect(try count(metrics, task: "demo.flaky", outcome: "retried") == 1)
        #expect(try count(metrics, task: "demo.add", outcome: "revoked") == 1)
        #expect(try count(metrics, task: "unknown", outcome: "rejected") == 1)
        #expect(try count(metrics, task: "unknown", outcome: "dead_lettered") == 1)
        #expect(metrics.counterTotal(label: TaskMetricNames.tasksTotal) == 7)

        // Runtimes of the three runs that reached a handler; none still in progress.
        let runtimes = metrics.timers(label: TaskMetricNames.runtime)
        #expect(runtimes.map { $0.values.count }.reduce(0, +) == 4)
        let adds = try metrics.expectTimer(TaskMetricNames.runtime, [("task", "demo.add"), ("queue", "metrics.q")])
        #expect(adds.values.count == 2)
        let inProgress = try metrics.expectMeter(
            TaskMetricNames.inProgress, [("task", "demo.add"), ("queue", "metrics.q")])
        #expect(inProgress.values == [1, 0, 1, 0])
    }

    @Test func publishToStartIsTimedOnlyWhenTheMessageSaysWhenItWasPublished() async throws {
        let metrics = TestMetrics()
        let runner = try runner(metrics)
        _ = try await runner.run("demo.add", args: [1, 2])
        #expect(metrics.timers(label: TaskMetricNames.queueWait).isEmpty)

        var message = TaskMessage(name: "demo.add", args: [1, 2])
        message.replyTo = TaskTestRunner.replyQueue
        var (properties, body) = message.encode()
        properties.timestamp = Date().addingTimeInterval(-120)
        _ = try await runner.run(ReceivedMessage(body: body, properties: properties, queue: "metrics.q"))
        let wait = try metrics.expectTimer(TaskMetricNames.queueWait, [("task", "demo.add"), ("queue", "metrics.q")])
        #expect(wait.values.count == 1)
        #expect((wait.values.first ?? 0) >= 119_000_000_000)
    }

    /// 10,000 garbage task names make one series per outcome, not 10,000.
    @Test func unknownTaskNamesShareOneLabelValue() async throws {
        let metrics = TestMetrics()
        let middleware = TaskMetricsMiddleware(knownTasks: Self.known, factory: metrics)
        for index in 0..<10_000 {
            let task = TaskContext(message: TaskMessage(name: "garbage.\(index).\(UUID())"), queue: "metrics.q")
            await middleware.recorded(.rejected(TaskRejection(reason: "unknown-task", message: "no")), of: task)
            _ = try await middleware.run(task) { _ in .null }
        }
        let series = metrics.counters(label: TaskMetricNames.tasksTotal)
        #expect(series.count == 1)
        #expect(series.first?.dimensions.first { $0.0 == "task" }?.1 == "unknown")
        #expect(metrics.counterTotal(label: TaskMetricNames.tasksTotal) == 10_000)
        #expect(metrics.timers(label: TaskMetricNames.runtime).count == 1)
        #expect(metrics.meters(label: TaskMetricNames.inProgress).count == 1)
    }

    func count(_ metrics: TestMetrics, task: String, outcome: String) throws -> Int64 {
        try metrics.expectCounter(
            TaskMetricNames.tasksTotal, [("task", task), ("queue", "metrics.q"), ("outcome", outcome)]
        ).totalValue
    }
}

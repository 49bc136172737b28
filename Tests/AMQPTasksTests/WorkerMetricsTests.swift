import AMQP
import Foundation
import Metrics
import MetricsTestKit
import Testing

@testable import AMQPTasks

/// A real worker on the real broker, reporting to its own `TestMetrics` (no process-global metrics system: suites run
/// in parallel in one process): the counters match the tasks the test sent, and `status` says when it consumes.
@Suite struct WorkerMetricsTests {
    @Test func aWorkerCountsTheTasksItRanByTaskQueueAndOutcome() async throws {
        let queue = uniqueQueue("metrics")
        let metrics = TestMetrics()
        let worker = try await RunningWorker.start(queues: [queue], concurrency: 2, metricsFactory: metrics)
        try await waitUntil("the worker says it is healthy") { worker.worker.status.isHealthy }
        #expect(worker.worker.status.consumers == [queue: 2])
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)

        for index in 0..<3 {
            let add = try await client.send("demo.add", args: [.int(index), 1], options: options)
            #expect(try await client.value(for: add, timeout: .seconds(30)) == .int(index + 1))
        }
        for _ in 0..<2 {
            let fail = try await client.send("demo.fail", args: ["no"], options: options)
            #expect(try await client.result(for: fail, timeout: .seconds(30)).status == .failure)
        }
        let unknown = try await client.send("garbage.\(UUID())", options: options)
        #expect(try await client.result(for: unknown, timeout: .seconds(30)).status == .failure)
        // The counter moves after the outcome is recorded (the caller may have its result a moment before).
        try await waitUntil("6 outcomes counted") { metrics.counterTotal(label: TaskMetricNames.tasksTotal) == 6 }

        func count(_ task: String, _ outcome: String) throws -> Int64 {
            try metrics.expectCounter(
                TaskMetricNames.tasksTotal, [("task", task), ("queue", queue), ("outcome", outcome)]
            ).totalValue
        }
        #expect(try count("demo.add", "succeeded") == 3)
        #expect(try count("demo.fail", "failed") == 2)
        #expect(try count("unknown", "rejected") == 1)
        #expect(metrics.counters(label: TaskMetricNames.tasksTotal).count == 3)
        let runtimes = try metrics.expectTimer(TaskMetricNames.runtime, [("task", "demo.add"), ("queue", queue)])
        #expect(runtimes.values.count == 3)
        // A TaskClient stamps what it publishes, so the worker times each task's wait in the queue.
        let waits = try metrics.expectTimer(TaskMetricNames.queueWait, [("task", "demo.add"), ("queue", queue)])
        #expect(waits.values.count == 3)
        #expect(try metrics.expectCounter(TaskMetricNames.reconnects).totalValue == 0)

        try await worker.stop()
        #expect(!worker.worker.status.isHealthy)
        #expect(worker.worker.status.consumers[queue, default: 0] == 0)
        await client.close()
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        _ = try await channel.deleteQueue(DeadLetters.name(for: queue))
        _ = try await channel.deleteQueue(queue)
        await connection.close()
    }

    /// Health is per queue: a deleted queue cancels its consumer, so the worker is unhealthy (that queue idle) until
    /// the consumer declared the queue again and consumes it.
    @Test func aQueueWithoutItsConsumerMakesTheWorkerUnhealthyUntilItConsumesAgain() async throws {
        let kept = uniqueQueue("health-kept")
        let deleted = uniqueQueue("health-deleted")
        let worker = try await RunningWorker.start(queues: [kept, deleted])
        try await waitUntil("the worker says it is healthy") { worker.worker.status.isHealthy }
        // Watch the status from before the delete, so the short time without a consumer is seen whatever its length.
        let watcher = Task {
            var seen: [WorkerStatus] = []
            while !Task.isCancelled {
                let status = worker.worker.status
                if seen.last != status { seen.append(status) }
                if seen.contains(where: { !$0.isHealthy }), status.isHealthy { return seen }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return seen
        }
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        _ = try await channel.deleteQueue(deleted)
        let deadline = Task {
            try await Task.sleep(for: .seconds(60))
            watcher.cancel()
        }
        let seen = await watcher.value
        deadline.cancel()
        let unhealthy = try #require(seen.first { !$0.isHealthy }, "never unhealthy: \(seen)")
        #expect(unhealthy.connected)
        #expect(unhealthy.idleQueues == [deleted])
        #expect(seen.last?.isHealthy == true, "healthy again once the queue is consumed: \(seen)")
        try await worker.stop()
        for queue in [kept, deleted, DeadLetters.name(for: kept), DeadLetters.name(for: deleted)] {
            _ = try? await channel.deleteQueue(queue)
        }
        await connection.close()
    }

    /// Polls `condition` (a safety-net deadline of 30 s, never an assertion on time).
    func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        for _ in 0..<600 where !condition() { try await Task.sleep(for: .milliseconds(50)) }
        if !condition() { throw TestFailure("timed out waiting until \(what)") }
    }
}

/// A `TaskClient` on the real broker reporting to its own `TestMetrics`: confirmed sends and one confirm latency per
/// publish (a batch is one).
@Suite struct ClientMetricsTests {
    @Test func aClientCountsItsConfirmedSendsAndTimesEachPublish() async throws {
        let queue = uniqueQueue("client-metrics")
        let metrics = TestMetrics()
        let client = try await TaskClient.connect(
            brokers: ConnectionConfiguration.list(Broker.url), metricsFactory: metrics)
        let options = SendOptions(queue: queue)
        let declare = try await client.openChannel()
        _ = try await declare.declareQueue(queue, durable: false, autoDelete: false)
        for index in 0..<3 { _ = try await client.send("demo.add", args: [.int(index), 1], options: options) }
        let batch = (0..<4).map { TaskMessage(name: "demo.add", args: [.int($0), 1]) }
        let results = try await client.sendBatch(batch, options: options)
        #expect(results.allSatisfy { (try? $0.get()) != nil })

        #expect(try metrics.expectCounter(TaskMetricNames.clientSends, [("outcome", "confirmed")]).totalValue == 7)
        #expect(metrics.counters(label: TaskMetricNames.clientSends).count == 1, "nothing refused")
        #expect(try metrics.expectTimer(TaskMetricNames.clientConfirmLatency).values.count == 4)
        #expect(metrics.counters(label: TaskMetricNames.clientRepublishes).isEmpty)
        _ = try await declare.deleteQueue(queue)
        await client.close()
    }
}

import AMQP
import AMQPTasks
import Foundation
import Testing

/// `amqp-worker` as a process: killed, stopped, and busy for longer than the heartbeat timeout.
@Suite struct WorkerProcessTests {
    @Test func taskOfAKilledWorkerCompletesOnAnotherAndReachesTheCaller() async throws {
        let queue = uniqueQueue("sigkill")
        let first = try WorkerProcess(["--demo-tasks", "--queue", queue, "--hostname", "first@test"])
        try await first.waitFor("consuming \(queue)")
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("demo.sleep", args: [3], options: SendOptions(queue: queue))
        try await first.waitFor("task_id=\(id) [AMQPTasks] received")
        first.signal(SIGKILL)
        _ = try await first.exitStatus()

        let second = try WorkerProcess(["--demo-tasks", "--queue", queue, "--hostname", "second@test"])
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.status == .success)
        #expect(second.output.contains("task_id=\(id) [AMQPTasks] received (redelivered)"))
        second.signal(SIGTERM)
        #expect(try await second.exitStatus() == 0)
        await client.close()
    }

    @Test func sigtermLetsTheRunningTaskFinishThenExitsZero() async throws {
        let queue = uniqueQueue("sigterm")
        let worker = try WorkerProcess(["--demo-tasks", "--queue", queue, "--grace", "20"])
        try await worker.waitFor("consuming \(queue)")
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("demo.sleep", args: [2], options: SendOptions(queue: queue))
        try await worker.waitFor("task_id=\(id) [AMQPTasks] received")
        worker.signal(SIGTERM)
        #expect(try await worker.exitStatus() == 0)
        let result = try await client.result(for: id, timeout: .seconds(5))
        #expect(result.status == .success, "the task finished during the warm shutdown")
        await client.close()
    }

    @Test func aThirtySecondTaskKeepsItsConnectionWithFiveSecondHeartbeats() async throws {
        let queue = uniqueQueue("heartbeat")
        let runs = RunLog()
        let worker = try await RunningWorker.start(queues: [queue], url: Broker.url + "?heartbeat=5") { registry in
            try registry.register("busy.thirty") { context in
                await runs.record(context.taskId)
                try await Task.sleep(for: .seconds(30))
                return "done"
            }
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("busy.thirty", options: SendOptions(queue: queue))
        #expect(try await client.value(for: id, timeout: .seconds(60)) == "done")
        #expect(await runs.count(id) == 1, "the connection held: the task was not redelivered")
        try await worker.stop()
        await client.close()
    }
}

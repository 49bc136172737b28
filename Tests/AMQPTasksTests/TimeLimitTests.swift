@testable import AMQPTasks
import AMQP
import Foundation
import Synchronization
import Testing

/// Soft and hard time limits against the real broker: a handler that ignores cancellation or blocks its thread fails
/// with `TimeLimitExceeded` and its consumer takes the next task; abandoned handlers that pile up stop the worker
/// for a restart; the soft limit reaches the handler, which may answer for itself; exec commands get SIGTERM at the
/// soft limit and SIGKILL at the hard one.
@Suite struct TimeLimitTests {
    /// Holds handlers until the test releases them, so nothing the test started outlives it.
    final class Release: Sendable {
        private let released = Atomic(false)
        var isReleased: Bool { released.load(ordering: .acquiring) }
        func release() { released.store(true, ordering: .releasing) }
    }

    static func limits(soft: Duration? = nil, hard: Duration? = nil, queue: String) -> SendOptions {
        var options = SendOptions(queue: queue)
        options.timeLimit = .init(hard: hard, soft: soft)
        return options
    }

    /// A handler that swallows cancellation in `while … { try? await Task.sleep(…) }` spins once its task is
    /// cancelled (a cancelled sleep returns at once). More of them than Swift's cooperative pool has threads would
    /// starve a worker that ran handlers on that pool; on their consumer's own threads they cannot.
    @Test func handlersThatIgnoreCancellationFailAtTheHardLimitAndTheNextTaskRuns() async throws {
        let queue = uniqueQueue("limit-async")
        let release = Release()
        defer { release.release() }
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("limits.ignores") { _ in
                    // Swallows every cancellation, as a handler that catches all errors does.
                    while !release.isReleased { try? await Task.sleep(for: .milliseconds(20)) }
                    return "released"
                }
            },
            configure: { $0.maxAbandonedHandlers = 100 })
        let client = try await TaskClient.connect(url: Broker.url)
        let count = ProcessInfo.processInfo.activeProcessorCount + 1
        var stuck: [String] = []
        for _ in 0..<count {
            stuck.append(try await client.send("limits.ignores", options: Self.limits(hard: .seconds(1), queue: queue)))
        }
        let next = try await client.send("demo.add", args: [2, 3], options: SendOptions(queue: queue))
        for id in stuck {
            let failed = try await client.result(for: id, timeout: .seconds(30))
            #expect(failed.status == .failure)
            #expect(failed.failure?.type == "TimeLimitExceeded")
            #expect(failed.failure?.module == "billiard.exceptions")
        }
        // One consumer, prefetch 1: the next task runs only once the stuck ones gave its slot back.
        #expect(try await client.value(for: next, timeout: .seconds(30)) == 5)
        #expect(worker.worker.state.watchdog.abandonedStillRunning == count, "the stuck handlers still run, counted")

        // Released, they end; their late results are dropped: each caller's only final state stays the FAILURE.
        release.release()
        try await BadInputTests.waitUntil("the abandoned handlers ended") { worker.worker.state.watchdog.abandonedStillRunning == 0 }
        try await worker.stop()
        await client.close()
    }

    /// A handler that never awaits holds its thread for ever; the hard limit still fails it (the watchdog fires it
    /// from its own thread) and the consumer goes on with a new handler thread. More abandoned handlers than
    /// `max_abandoned_handlers` stop the worker with `WorkerShutdown.restartNeeded` (amqp-worker exits 75) after
    /// their FAILUREs were recorded.
    @Test func aHandlerBlockingItsThreadFailsAtTheHardLimitAndTooManyAbandonedOnesStopTheWorker() async throws {
        let queue = uniqueQueue("limit-blocking")
        let release = Release()
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("limits.blocks") { _ in
                    var spins = 0
                    while !release.isReleased { spins &+= 1 }  // never awaits: holds its thread
                    return .int(spins)
                }
                try registry.register("limits.ignores") { _ in
                    while !release.isReleased { try? await Task.sleep(for: .milliseconds(20)) }
                    return "released"
                }
            },
            configure: { $0.maxAbandonedHandlers = 1 })
        let client = try await TaskClient.connect(url: Broker.url)
        defer { release.release() }

        let blocking = try await client.send("limits.blocks", options: Self.limits(hard: .seconds(1), queue: queue))
        let blockedResult = try await client.result(for: blocking, timeout: .seconds(30))
        #expect(blockedResult.failure?.type == "TimeLimitExceeded")
        // One abandoned handler is tolerated: the worker goes on.
        let next = try await client.send("demo.add", args: [2, 3], options: SendOptions(queue: queue))
        #expect(try await client.value(for: next, timeout: .seconds(30)) == 5)

        // A second one is one too many.
        let second = try await client.send("limits.ignores", options: Self.limits(hard: .seconds(1), queue: queue))
        #expect(try await client.result(for: second, timeout: .seconds(30)).failure?.type == "TimeLimitExceeded")
        let ended = await worker.task.result
        guard case .failure(WorkerShutdown.restartNeeded(let reason)) = ended else {
            Issue.record("expected the worker to stop for a restart, got \(ended)")
            return
        }
        #expect(reason.contains("max_abandoned_handlers = 1"), "\(reason)")
        // It stopped taking tasks: the next one waits in the queue for the restarted worker.
        let after = try await client.send("demo.add", args: [1, 1], options: SendOptions(queue: queue))
        #expect(try await readyMessages(in: queue) == 1, "task \(after) waits for the next worker")
        release.release()
        try await BadInputTests.waitUntil("both abandoned handlers ended") { worker.worker.state.watchdog.abandonedStillRunning == 0 }
        await client.close()
    }

    @Test func aHandlerThatCatchesTheSoftLimitReturnsItsOwnResult() async throws {
        let queue = uniqueQueue("limit-soft")
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send(
            "demo.soft_sleep", args: [300], options: Self.limits(soft: .milliseconds(500), hard: .seconds(60), queue: queue))
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.status == .success)
        #expect(result.result == ["soft_time_limit_exceeded": true])
        try await worker.stop()
        await client.close()
    }

    @Test func aHandlerThatLetsTheSoftLimitEscapeFailsWithSoftTimeLimitExceeded() async throws {
        let queue = uniqueQueue("limit-soft-escapes")
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send(
            "demo.sleep", args: [300], options: Self.limits(soft: .milliseconds(500), hard: .seconds(60), queue: queue))
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.status == .failure)
        #expect(result.failure?.type == "SoftTimeLimitExceeded")
        #expect(result.failure?.module == "billiard.exceptions")
        try await worker.stop()
        await client.close()
    }

    @Test func aHandlerThatIgnoresTheSoftLimitFailsAtTheHardLimit() async throws {
        let queue = uniqueQueue("limit-soft-ignored")
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send(
            "demo.stubborn_sleep", args: [5],
            options: Self.limits(soft: .milliseconds(300), hard: .milliseconds(1500), queue: queue))
        let next = try await client.send("demo.add", args: [2, 3], options: SendOptions(queue: queue))
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.failure?.type == "TimeLimitExceeded")
        #expect(try await client.value(for: next, timeout: .seconds(30)) == 5)
        try await worker.stop()
        await client.close()
    }

    // MARK: Exec handlers

    /// SIGKILL comes at the hard limit, not `kill_timeout` (here 300 s) after a SIGTERM: the command that ignores
    /// SIGTERM ends, and the next task runs on the same single consumer.
    @Test func anExecCommandIgnoringSIGTERMIsKilledAtTheHardLimitAndTheNextTaskRuns() async throws {
        let queue = uniqueQueue("limit-exec-kill")
        let pids = TemporaryFile()
        var options = ExecOptions()
        options.killTimeout = .seconds(300)
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register(
                "limits.exec.deaf",
                ExecHandler(
                    command: ["/bin/sh", "-c", "trap '' TERM; sleep 1000 & echo $$ $! > \(pids.path); wait"],
                    options: options))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send(
            "limits.exec.deaf", options: Self.limits(soft: .milliseconds(300), hard: .seconds(1), queue: queue))
        let next = try await client.send("demo.add", args: [2, 3], options: SendOptions(queue: queue))
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.failure?.type == "TimeLimitExceeded")
        #expect(try await client.value(for: next, timeout: .seconds(30)) == 5)
        for pid in try await pids.waitForPIDs(2) {
            #expect(try await processEnds(pid), "process \(pid) was killed at the hard limit")
        }
        try await worker.stop()
        await client.close()
    }

    /// At the soft limit the group gets SIGTERM: a command that traps it and prints a result answers with it.
    @Test func anExecCommandThatTrapsSIGTERMAtTheSoftLimitReturnsItsOwnResult() async throws {
        let queue = uniqueQueue("limit-exec-soft")
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register(
                "limits.exec.tidy",
                ExecHandler(command: [
                    "/bin/sh", "-c", #"trap 'echo "{\"cleaned\": true}"; exit 0' TERM; sleep 1000 & wait"#,
                ]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send(
            "limits.exec.tidy", options: Self.limits(soft: .milliseconds(500), hard: .seconds(60), queue: queue))
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.status == .success, "\(result.result)")
        #expect(result.result == ["cleaned": true])
        try await worker.stop()
        await client.close()
    }

    /// A command that answers at the soft limit ends its task: what it left running in its group (here a child that
    /// ignores SIGTERM) is killed when it exits, as after any command that exits by itself.
    @Test func whatACommandLeavesBehindAtTheSoftLimitIsKilledWhenItExits() async throws {
        let queue = uniqueQueue("limit-exec-leftover")
        let pids = TemporaryFile()
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register(
                "limits.exec.leaves",
                ExecHandler(command: [
                    "/bin/sh", "-c",
                    "trap 'echo done; exit 0' TERM; /bin/sh -c \"trap '' TERM; sleep 1000\" & echo $! > \(pids.path); wait",
                ]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send(
            "limits.exec.leaves", options: Self.limits(soft: .milliseconds(500), hard: .seconds(120), queue: queue))
        #expect(try await client.value(for: id, timeout: .seconds(30)) == "done")
        let leftover = try await pids.waitForPID()
        #expect(try await processEnds(leftover), "the child that ignored SIGTERM was killed when the command exited")
        try await worker.stop()
        await client.close()
    }

    /// A command without a trap dies of the soft limit's SIGTERM: `SoftTimeLimitExceeded`, as a Celery task that
    /// does not catch it.
    @Test func anExecCommandKilledByTheSoftLimitsSIGTERMFailsWithSoftTimeLimitExceeded() async throws {
        let queue = uniqueQueue("limit-exec-soft-dies")
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("limits.exec.plain", ExecHandler(command: ["/bin/sleep", "1000"]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send(
            "limits.exec.plain", options: Self.limits(soft: .milliseconds(300), hard: .seconds(60), queue: queue))
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.failure?.type == "SoftTimeLimitExceeded")
        try await worker.stop()
        await client.close()
    }
}


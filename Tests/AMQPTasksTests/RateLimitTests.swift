import AMQP
@testable import AMQPTasks
import Foundation
import Synchronization
import Testing

/// Rate limits: Celery's syntax, the per-worker bucket, `[tasks."NAME"] rate_limit` on a real worker, and
/// `celery control rate_limit` (as a pidbox request) changing it at run time.
@Suite struct RateLimitTests {
    @Test func celerysSyntaxParses() throws {
        #expect(try RateLimit.parse("10/s")?.perSecond == 10)
        #expect(try RateLimit.parse("120/m")?.perSecond == 2)
        #expect(try RateLimit.parse("36/h")?.perSecond == 0.01)
        #expect(try RateLimit.parse("5")?.perSecond == 5, "a bare number is per second")
        #expect(try RateLimit.parse("0.5/s")?.perSecond == 0.5)
        #expect(try RateLimit.parse("0") == nil, "zero is no limit")
        #expect(try RateLimit.parse("") == nil)
        for bad in ["fast", "10/d", "-1/s", "/s", "nan/s", "inf", "1/s/s"] {
            #expect(throws: RateLimitSyntaxError.self, "\(bad)") { try RateLimit.parse(bad) }
        }
    }

    @Test func theConfigurationReadsRateLimitsAndNamesABadOneByFileLineAndKey() throws {
        let configuration = try TasksConfiguration.parse(
            """
            [tasks."a"]
            rate_limit = "10/m"

            [tasks."b"]
            rate_limit = 3
            """, file: "t.toml", environment: [:])
        #expect(configuration.tasks["a"]?.rateLimit?.perSecond == 10.0 / 60)
        #expect(configuration.tasks["b"]?.rateLimit?.perSecond == 3)
        let error = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse("[tasks.\"a\"]\nrate_limit = \"lots\"\n", file: "t.toml", environment: [:])
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("t.toml:2") && text.contains("rate_limit") && text.contains("10/s"), "\(text)")
    }

    @Test func startsAreSpacedByTheLimitInTheOrderReserved() {
        let limits = TaskRateLimits(["t": RateLimit(perSecond: 4)!])
        let now = ContinuousClock.now
        #expect(limits.reserve("t", now: now) == .zero)
        #expect(limits.reserve("t", now: now) == .milliseconds(250))
        #expect(limits.reserve("t", now: now) == .milliseconds(500))
        #expect(limits.reserve("other", now: now) == .zero, "a task without a limit never waits")
        // After a quiet second the bucket holds one start, not more: the next two are spaced again.
        let later = now + .seconds(2)
        #expect(limits.reserve("t", now: later) == .zero)
        #expect(limits.reserve("t", now: later) == .milliseconds(250))
        limits.set(nil, for: "t")
        #expect(limits.reserve("t", now: later) == .zero, "a removed limit holds nothing back")
    }

    /// Celery's test of `rate_limit = "5/s"`: 20 tasks on one worker cannot all start within 3.8 s of the first
    /// send (each start is reserved at least 0.2 s after the one before, the first no sooner than the send).
    @Test func aWorkerStartsNoMoreTasksThanItsRateLimit() async throws {
        let queue = uniqueQueue("ratelimit")
        let starts = StartLog()
        let worker = try await RunningWorker.start(
            queues: [queue], concurrency: 2,
            register: { registry in
                try registry.register("rate.run") { _ in
                    await starts.started()
                    return .null
                }
            },
            configure: { $0.tasks["rate.run"] = TaskSettings(rateLimit: RateLimit(perSecond: 5)) })
        let client = try await TaskClient.connect(url: Broker.url)
        var options = SendOptions(queue: queue)
        options.ignoreResult = true
        let sent = ContinuousClock.now
        _ = try await client.sendBatch((0..<20).map { _ in client.message("rate.run", options: options) }, options: options)
        for _ in 0..<1200 where await starts.count < 20 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(await starts.count == 20)
        let last = try #require(await starts.last)
        #expect(last - sent >= .milliseconds(3800), "20 starts at 5/s took \(last - sent) from the send")
        try await worker.stop()
        await client.close()
    }

    @Test func celeryControlRateLimitChangesTheLimitAndAnswersAsCelery() async throws {
        let worker = try await PidboxWorker.start(access: .all)
        let requester = try await PidboxRequester.open()
        #expect(
            try await requester.ask(worker.hostname, "rate_limit", ["task_name": "demo.add", "rate_limit": "100/s"])
                == ["ok": "new rate limit set successfully"])
        #expect(worker.worker.state.rateLimits.limit(for: "demo.add")?.perSecond == 100)
        #expect(
            try await requester.ask(worker.hostname, "rate_limit", ["task_name": "demo.add", "rate_limit": 0])
                == ["ok": "rate limit disabled successfully"])
        #expect(worker.worker.state.rateLimits.limit(for: "demo.add") == nil)
        #expect(
            try await requester.ask(worker.hostname, "rate_limit", ["task_name": "no.such.task", "rate_limit": "1/s"])
                == ["error": "unknown task"])
        let invalid = try await requester.ask(worker.hostname, "rate_limit", ["task_name": "demo.add", "rate_limit": "often"])
        #expect(invalid["error"]?.stringValue?.hasPrefix("Invalid rate limit string") == true, "\(invalid)")
        try await requester.close()
        try await worker.stop()
    }

    /// A worker whose `rate.slow` may start once an hour (remote control `full`), on a queue of its own, and the
    /// log of the starts of its handler.
    static func workerLimitedToOnePerHour() async throws -> (String, StartLog, RunningWorker) {
        let queue = uniqueQueue("ratelimit")
        let starts = StartLog()
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("rate.slow") { _ in
                    await starts.started()
                    return .null
                }
            },
            configure: {
                $0.tasks["rate.slow"] = TaskSettings(rateLimit: try! RateLimit.parse("1/h"))
                $0.remoteControl = .all
            })
        return (queue, starts, worker)
    }

    /// A limit of 1/h (set by mistake, or a rate such as 1e-300/s) makes the second task wait an hour or more,
    /// holding its consumer; lifting the limit with `celery control rate_limit NAME 0` must let it start now, not
    /// when the old reservation comes.
    @Test func liftingALimitStartsTheTaskThatWaitsForIt() async throws {
        let (queue, starts, worker) = try await Self.workerLimitedToOnePerHour()
        let client = try await TaskClient.connect(url: Broker.url)
        var options = SendOptions(queue: queue)
        options.ignoreResult = true
        _ = try await client.sendBatch((0..<2).map { _ in client.message("rate.slow", options: options) }, options: options)
        let limits = worker.worker.state.rateLimits
        for _ in 0..<1200 where await starts.count < 1 || limits.waiting(for: "rate.slow") < 1 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(await starts.count == 1, "the first task started at once")
        #expect(limits.waiting(for: "rate.slow") == 1, "the second waits for its start, an hour away")

        let requester = try await PidboxRequester.open()
        #expect(
            try await requester.ask(worker.worker.configuration.hostname, "rate_limit", ["task_name": "rate.slow", "rate_limit": 0])
                == ["ok": "rate limit disabled successfully"])
        try await requester.close()
        for _ in 0..<600 where await starts.count < 2 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(await starts.count == 2, "the waiting task started once the limit was lifted")
        #expect(limits.waiting(for: "rate.slow") == 0)
        await client.close()
        try await worker.stop()
    }

    /// A task held by its rate limit (its start an hour away) that is revoked ends REVOKED now, not after its
    /// turn, and its consumer takes the next task.
    @Test func aRevokedTaskWaitingForItsRateLimitEndsRevokedAtOnceAndTheSlotTakesTheNext() async throws {
        let (queue, starts, worker) = try await Self.workerLimitedToOnePerHour()
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)
        _ = try await client.send("rate.slow", options: options)
        let held = try await client.send("rate.slow", options: options)
        let limits = worker.worker.state.rateLimits
        for _ in 0..<1200 where await starts.count < 1 || limits.waiting(for: "rate.slow") < 1 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(limits.waiting(for: "rate.slow") == 1, "the second task waits for its start, an hour away")

        let requester = try await PidboxRequester.open()
        _ = try await requester.ask(worker.worker.configuration.hostname, "revoke", ["task_id": .string(held)])
        try await requester.close()
        #expect(try await client.result(for: held, timeout: .seconds(20)).status == .revoked)
        _ = try await client.send("rate.slow", options: options)
        for _ in 0..<600 where limits.waiting(for: "rate.slow") < 1 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(limits.waiting(for: "rate.slow") == 1, "the consumer took the next task, which waits its turn")
        #expect(await starts.count == 1, "the revoked task never ran")
        await client.close()
        try await worker.stop()
    }

    @Test func aReleasedWaitGivesItsStartBack() async throws {
        let limits = TaskRateLimits(["t": RateLimit(perSecond: 1.0 / 3600)!])
        #expect(limits.reserve("t") == .zero)
        let release = StartWaitRelease()
        let revoked = RevokedFlag()
        let waiter = Task {
            try await limits.waitForStart(of: "t", releasedBy: { await release.wait(for: "x") { revoked.isSet } })
        }
        for _ in 0..<1200 where limits.waiting(for: "t") < 1 { try await Task.sleep(for: .milliseconds(10)) }
        // As `WorkerState.revoke` does: the id is revoked first, then its waits are released (a wait that registers
        // after the release sees the flag).
        revoked.set()
        release.release(["x"])
        #expect(try await waiter.value == false, "released, not started")
        let next = limits.reserve("t")
        #expect(next > .seconds(3500) && next <= .seconds(3600), "the next task takes the released start: \(next)")
    }

    @Test func aStopDuringARateLimitWaitRequeuesTheTask() async throws {
        let limits = TaskRateLimits(["t": RateLimit(perSecond: 1.0 / 3600)!])
        #expect(limits.reserve("t") == .zero)
        let waiter = Task { try await limits.waitForStart(of: "t") }
        for _ in 0..<1200 where limits.waiting(for: "t") < 1 { try await Task.sleep(for: .milliseconds(10)) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(limits.waiting(for: "t") == 0)
        limits.set(RateLimit(perSecond: 1), for: "t")  // no waiter left to wake
    }

    @Test func readOnlyRemoteControlRefusesRateLimit() async throws {
        let worker = try await PidboxWorker.start(access: .readOnly)
        let requester = try await PidboxRequester.open()
        let answer = try await requester.ask(worker.hostname, "rate_limit", ["task_name": "demo.add", "rate_limit": "1/s"])
        #expect(answer["error"] != nil, "\(answer)")
        #expect(worker.worker.state.rateLimits.limit(for: "demo.add") == nil)
        try await requester.close()
        try await worker.stop()
    }
}

/// When a handler started, in the order handlers started.
actor StartLog {
    private var starts: [ContinuousClock.Instant] = []
    func started() { starts.append(.now) }
    var count: Int { starts.count }
    var last: ContinuousClock.Instant? { starts.max() }
}

/// A revoked flag for one id, as `WorkerState` keeps it.
final class RevokedFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}

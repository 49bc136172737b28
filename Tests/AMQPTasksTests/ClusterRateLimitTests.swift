import AMQP
@testable import AMQPTasks
import Foundation
import Testing

/// Cluster-wide rate limits (`rate_limit_scope = "cluster"`) on the real broker: several workers in this process,
/// each with its own connections, take tokens from one token queue refilled by one elected refiller. Every test
/// has a task name of its own, so its token queue and refiller lock are its own.
@Suite struct ClusterRateLimitTests {
    /// What each start saw: the token it consumed and when it started.
    actor TokenLog {
        struct Start {
            let taskId: String
            let token: RateLimitToken?
            let at: ContinuousClock.Instant
        }
        private(set) var starts: [Start] = []
        func started(_ taskId: String, _ token: RateLimitToken?) { starts.append(Start(taskId: taskId, token: token, at: .now)) }
        var count: Int { starts.count }
        var latestRefiller: String? { starts.last?.token?.refiller }
    }

    static let rate = 10.0
    /// Consumer slots per worker: each may wait for a token.
    static let concurrency = 2

    func uniqueTask() -> String { "cluster.rate.\(UUID().uuidString.prefix(8).lowercased())" }

    func startWorker(_ queue: String, task: String, log: TokenLog) async throws -> RunningWorker {
        try await RunningWorker.start(
            queues: [queue], concurrency: Self.concurrency,
            register: { registry in
                try registry.register(task) { context in
                    await log.started(context.taskId, RateLimitToken.current)
                    return .null
                }
            },
            configure: {
                $0.tasks[task] = TaskSettings(rateLimit: RateLimit(perSecond: Self.rate), rateLimitScope: .cluster)
                $0.remoteControl = .all
            })
    }

    func send(_ count: Int, of task: String, to queue: String) async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        var options = SendOptions(queue: queue)
        options.ignoreResult = true
        _ = try await client.sendBatch((0..<count).map { _ in client.message(task, options: options) }, options: options)
        await client.close()
    }

    func deleteTokenQueue(_ task: String) async throws {
        let connection = try await Connection.open(url: Broker.url)
        _ = try await connection.openChannel().deleteQueue(ClusterRateLimits.queue(task))
        await connection.close()
    }

    /// The most starts within any window of `seconds` (each window begins at a start).
    func mostStarts(in seconds: Double, _ starts: [ContinuousClock.Instant]) -> Int {
        let sorted = starts.sorted()
        var most = 0
        var end = 0
        for begin in sorted.indices {
            while end < sorted.count && sorted[end] - sorted[begin] <= .seconds(seconds) { end += 1 }
            most = max(most, end - begin)
        }
        return most
    }

    /// What every run must show: each start consumed a token, no token twice; no window of T seconds saw more
    /// than ⌈rate·T⌉ + 1 tokens issued (+ 1 per refiller takeover), nor more than ⌈rate·T⌉ + 1 + burst + W taken
    /// (+ 1 per takeover), W the slots that wait for tokens: a take follows its token's issue by the broker's delivery,
    /// so the tokens taken in a window are those issued in it, the one the queue may hold, and those in flight (one
    /// per waiting slot at most) when it opened. A take is the
    /// moment the limit let the task start (`RateLimitToken.takenAt`); the handler begins when the worker gets to it.
    func expectTheBound(_ starts: [TokenLog.Start], takeovers: Int = 0, waitingSlots: Int) {
        #expect(starts.allSatisfy { $0.token != nil }, "every start consumed a token")
        let tokens = starts.compactMap(\.token)
        let ids = tokens.map(\.id)
        #expect(Set(ids).count == ids.count, "no two tasks consumed the same token: \(ids.count - Set(ids).count) repeated")
        #expect(tokens.allSatisfy { $0.takenAt >= $0.issuedAt }, "no token was taken before it was issued")
        let anchor = ContinuousClock.now
        let reference = Date()
        func instants(_ dates: [Date]) -> [ContinuousClock.Instant] {
            dates.map { anchor + .seconds($0.timeIntervalSince(reference)) }
        }
        for window in [1.0, 3.0, 10.0] {
            let issuedBound = Int((Self.rate * window).rounded(.up)) + 1 + takeovers
            let issued = mostStarts(in: window, instants(tokens.map(\.issuedAt)))
            #expect(issued <= issuedBound, "\(issued) tokens issued within \(window) s; the bound is \(issuedBound)")
            // Each waiting slot may hold one token delivered before the window and taken in it: a loaded CI machine
            // saw a take bound of +1 broken by one (two slots each handed a token late).
            let takenBound = issuedBound + ClusterRateLimits.burst + waitingSlots
            let taken = mostStarts(in: window, instants(tokens.map(\.takenAt)))
            #expect(taken <= takenBound, "\(taken) starts within \(window) s; the bound is \(takenBound)")
        }
    }

    /// The limit's rate: the refiller issues its tokens at the rate (the median gap between consecutive tokens is
    /// the interval, ±15 %). Counted on the tokens, not on the run's length: a machine that stalls the whole process
    /// (a loaded CI runner) stalls the refiller too, which then issues fewer tokens, as documented. How many of the
    /// issued tokens the tasks used is not asserted: it measures the machine, not the limit (the whole suite running
    /// beside this test, a clean-clone CI run used 299 of 383 where an idle machine uses all).
    func expectTheRate(_ starts: [TokenLog.Start]) {
        let tokens = starts.compactMap(\.token).sorted { $0.sequence < $1.sequence }
        guard tokens.count > 2 else {
            Issue.record("too few starts to tell a rate: \(tokens.count)")
            return
        }
        let gaps = zip(tokens, tokens.dropFirst()).filter { $1.sequence == $0.sequence + 1 }
            .map { $1.issuedAt.timeIntervalSince($0.issuedAt) }.sorted()
        let interval = 1 / Self.rate
        let median = gaps.isEmpty ? .infinity : gaps[gaps.count / 2]
        #expect(abs(median - interval) <= 0.15 * interval, "the refiller issued a token every \(median) s (median of \(gaps.count))")
    }

    @Test func theClusterWideLimitHolds10PerSecondAcross3WorkersFor30Seconds() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let log = TokenLog()
        var workers: [RunningWorker] = []
        for _ in 0..<3 { workers.append(try await startWorker(queue, task: task, log: log)) }
        let total = 300
        try await send(total, of: task, to: queue)
        for _ in 0..<2400 where await log.count < total { try await Task.sleep(for: .milliseconds(50)) }
        let starts = await log.starts
        #expect(starts.count == total, "all \(total) tasks started")
        expectTheBound(starts, waitingSlots: 3 * Self.concurrency)
        #expect(Set(starts.compactMap { $0.token?.refiller }).count == 1, "one refiller issued every token")
        expectTheRate(starts)
        for worker in workers { try await worker.stop() }
        try await deleteTokenQueue(task)
    }

    /// The refiller stops mid-run: another worker becomes refiller, tasks keep starting, the bound holds with one
    /// takeover.
    @Test func whenTheRefillerStopsAnotherTakesOverAndTheBoundHolds() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let log = TokenLog()
        var workers: [RunningWorker] = []
        for _ in 0..<3 { workers.append(try await startWorker(queue, task: task, log: log)) }
        let total = 100
        try await send(total, of: task, to: queue)
        for _ in 0..<1200 where await log.count < 30 { try await Task.sleep(for: .milliseconds(50)) }
        let refiller = try #require(await log.latestRefiller)
        let leader = try #require(workers.firstIndex { refiller.hasPrefix($0.worker.configuration.hostname + "/") })
        try await workers.remove(at: leader).stop()
        for _ in 0..<2400 where Set(await log.starts.map(\.taskId)).count < total {
            try await Task.sleep(for: .milliseconds(50))
        }
        let starts = await log.starts
        #expect(Set(starts.map(\.taskId)).count == total, "every task started, after the refiller stopped too")
        let refillers = Set(starts.compactMap { $0.token?.refiller })
        #expect(refillers.count == 2 && refillers.contains(refiller), "another worker took over: \(refillers)")
        expectTheBound(starts, takeovers: 1, waitingSlots: 3 * Self.concurrency)
        for worker in workers { try await worker.stop() }
        try await deleteTokenQueue(task)
    }

    /// A task waiting for a token (the next is an hour away) that is revoked ends REVOKED now, and its token
    /// wait ends: the next task waits in its place.
    @Test func aRevokedTaskWaitingForATokenEndsRevokedAtOnce() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let log = TokenLog()
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register(task) { context in
                    await log.started(context.taskId, RateLimitToken.current)
                    return .null
                }
            },
            configure: {
                $0.tasks[task] = TaskSettings(rateLimit: try! RateLimit.parse("1/h"), rateLimitScope: .cluster)
                $0.remoteControl = .all
            })
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)
        let first = try await client.send(task, options: options)
        #expect(try await client.result(for: first, timeout: .seconds(30)).status == .success, "the first token came at once")
        let held = try await client.send(task, options: options)
        let requester = try await PidboxRequester.open()
        // Revoked once it waits: `active` does not list it yet, so wait until its consumer holds it unacknowledged.
        let probe = try await Connection.open(url: Broker.url)
        var unacknowledged: UInt32 = 0
        for _ in 0..<600 where unacknowledged == 0 {
            let channel = try await probe.openChannel()
            let state = try await channel.inspectQueue(queue)
            unacknowledged = state.messageCount == 0 ? 1 : 0
            try? await channel.close()
            if unacknowledged == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        await probe.close()
        _ = try await requester.ask(worker.worker.configuration.hostname, "revoke", ["task_id": .string(held)])
        try await requester.close()
        #expect(try await client.result(for: held, timeout: .seconds(20)).status == .revoked)
        #expect(await log.count == 1, "the revoked task never ran")
        await client.close()
        try await worker.stop()
        try await deleteTokenQueue(task)
    }

    /// A worker that stops while its slots wait for a token (the next is an hour away) returns their tasks to the
    /// queue: a stop is not a revoke, no task is lost or recorded REVOKED.
    @Test func aWorkerStoppingWhileTasksWaitForATokenReturnsThemToTheQueue() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let log = TokenLog()
        let worker = try await RunningWorker.start(
            queues: [queue], concurrency: 2,
            register: { registry in
                try registry.register(task) { context in
                    await log.started(context.taskId, RateLimitToken.current)
                    return .null
                }
            },
            configure: { $0.tasks[task] = TaskSettings(rateLimit: try! RateLimit.parse("1/h"), rateLimitScope: .cluster) })
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)
        let first = try await client.send(task, options: options)
        #expect(try await client.result(for: first, timeout: .seconds(30)).status == .success, "the first token came at once")
        for _ in 0..<2 { _ = try await client.send(task, options: options) }
        let probe = try await Connection.open(url: Broker.url)
        func ready() async throws -> UInt32 {
            let channel = try await probe.openChannel()
            defer { Task { try? await channel.close() } }
            return try await channel.inspectQueue(queue).messageCount
        }
        // Both slots hold their task, unacknowledged, waiting for a token.
        for _ in 0..<600 where try await ready() > 0 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try await ready() == 0, "both tasks wait in the worker")
        try await worker.stop()
        for _ in 0..<600 where try await ready() < 2 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try await ready() == 2, "both waiting tasks went back to the queue (a REVOKED task is acknowledged)")
        #expect(await log.count == 1)
        await probe.close()
        await client.close()
        try await deleteTokenQueue(task)
    }

    /// Someone deletes the token queue while the workers run: the next task still gets a token (a waiting worker
    /// declares the queue again) instead of waiting forever while the refiller's tokens go nowhere.
    @Test func aDeletedTokenQueueIsDeclaredAgainAndTasksStillStart() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let log = TokenLog()
        let worker = try await startWorker(queue, task: task, log: log)
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)
        let first = try await client.send(task, options: options)
        #expect(try await client.result(for: first, timeout: .seconds(30)).status == .success, "a token before the delete")
        try await deleteTokenQueue(task)
        let second = try await client.send(task, options: options)
        #expect(
            try await client.result(for: second, timeout: .seconds(30)).status == .success,
            "a token after the token queue was deleted")
        #expect(await log.count == 2)
        await client.close()
        try await worker.stop()
        try await deleteTokenQueue(task)
    }

    /// However many of a worker's slots wait for a token, the worker has one token consumer of the task (one
    /// channel, one consumer), not one per waiting slot or per token: counted on the token queue (a passive
    /// queue.declare) all along a run of 40 tasks through 4 slots.
    @Test func aWorkerTakesEveryTokenThroughOneLongLivedConsumer() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let log = TokenLog()
        let worker = try await RunningWorker.start(
            queues: [queue], concurrency: 4,
            register: { registry in
                try registry.register(task) { context in
                    await log.started(context.taskId, RateLimitToken.current)
                    return .null
                }
            },
            configure: { $0.tasks[task] = TaskSettings(rateLimit: RateLimit(perSecond: 20), rateLimitScope: .cluster) })
        let total = 40
        try await send(total, of: task, to: queue)
        let probe = try await Connection.open(url: Broker.url)
        var consumerCounts: [UInt32] = []
        for _ in 0..<2400 where await log.count < total {
            let channel = try await probe.openChannel()
            consumerCounts.append(try await channel.inspectQueue(ClusterRateLimits.queue(task)).consumerCount)
            try? await channel.close()
            try await Task.sleep(for: .milliseconds(20))
        }
        await probe.close()
        #expect(await log.count == total, "all \(total) tasks started")
        #expect(consumerCounts.contains(1), "the worker's token consumer was counted")
        #expect(
            consumerCounts.allSatisfy { $0 <= 1 },
            "one token consumer while 4 slots waited; counted at most \(consumerCounts.max() ?? 0) (\(consumerCounts.count) counts)")
        try await worker.stop()
        try await deleteTokenQueue(task)
    }

    /// The broker closes the connection the worker takes tokens on (here through the management API): the worker
    /// connects again, opens its one token consumer there, and the next task gets a token.
    @Test func aLostConnectionReopensTheTokenConsumer() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let log = TokenLog()
        let worker = try await startWorker(queue, task: task, log: log)
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)
        let first = try await client.send(task, options: options)
        #expect(try await client.result(for: first, timeout: .seconds(30)).status == .success, "a token before the loss")
        let identity = try #require(worker.worker.clusterRateLimits?.identity)
        let api = "http://127.0.0.1:\(ManagementAPIProbe.port)/api/connections"
        var name: String?
        for _ in 0..<300 where name == nil {
            let listing = try ManagementAPIProbe.run(["curl", "-sf", "-u", "guest:guest", api])
            name = (try? JSONValue.parse(Data(listing.utf8)))?.arrayValue?
                .first { $0["user_provided_name"]?.stringValue == "amqp-tasks rate limits \(identity)" }?["name"]?.stringValue
            if name == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let connection = try #require(name, "the management API lists the worker's rate-limit connection")
        let encoded = connection.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? connection
        _ = try ManagementAPIProbe.run(["curl", "-sf", "-u", "guest:guest", "-X", "DELETE", "\(api)/\(encoded)"])
        let second = try await client.send(task, options: options)
        #expect(try await client.result(for: second, timeout: .seconds(30)).status == .success, "a token after the loss")
        let probe = try await Connection.open(url: Broker.url)
        let channel = try await probe.openChannel()
        #expect(try await channel.inspectQueue(ClusterRateLimits.queue(task)).consumerCount == 1, "one token consumer again")
        await probe.close()
        #expect(await log.count == 2)
        await client.close()
        try await worker.stop()
        try await deleteTokenQueue(task)
    }

    /// A message published into the token queue by anyone but a refiller (here one whose body even reads as a
    /// token) is not a token: the worker rejects it, stays up, runs every task on the refiller's tokens only, at
    /// the rate, and the message is gone from the queue (not requeued).
    @Test func aForeignMessageInTheTokenQueueIsRejectedNotUsedAsAToken() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let log = TokenLog()
        let worker = try await startWorker(queue, task: task, log: log)
        let total = 20
        try await send(total, of: task, to: queue)
        for _ in 0..<1200 where await log.count < 2 { try await Task.sleep(for: .milliseconds(50)) }
        // Published while tasks take every token (the queue has room): retried while the full queue refuses it.
        let forger = try await Connection.open(url: Broker.url)
        let channel = try await forger.openChannel()
        try await channel.confirmSelect()
        let forged = RateLimitToken(refiller: "forger", sequence: 1, issuedAt: Date())
        var published = false
        for _ in 0..<600 where !published {
            do {
                try await channel.publish(
                    OutgoingMessage(
                        body: forged.body, routingKey: ClusterRateLimits.queue(task),
                        properties: BasicProperties(contentType: "application/json", messageId: "forged")))
                published = true
            } catch let error as AMQPError where error.kind == .nacked {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(published, "the forged message was accepted by the token queue")
        for _ in 0..<2400 where await log.count < total { try await Task.sleep(for: .milliseconds(50)) }
        let starts = await log.starts
        #expect(starts.count == total, "every task ran: the worker stayed up")
        #expect(
            starts.allSatisfy { $0.token?.refiller != "forger" }, "no task used the forged message as its token")
        #expect(Set(starts.compactMap { $0.token?.refiller }).count == 1, "one refiller issued every token used")
        expectTheBound(starts, waitingSlots: 1)
        try await worker.stop()
        // Nothing foreign is left in the queue (rejected without requeue): what remains are the refiller's tokens.
        var left: [Delivery] = []
        while let delivery = try await channel.get(queue: ClusterRateLimits.queue(task), autoAck: true) {
            left.append(delivery)
        }
        #expect(
            left.allSatisfy { $0.properties.type == RateLimitToken.messageType },
            "the forged message was not requeued: \(left.map { $0.properties.messageId ?? "-" })")
        await forger.close()
        try await deleteTokenQueue(task)
    }

    /// Workers often share one configuration while each runs only some of its tasks. A worker configured with a
    /// task's cluster-wide limit that does not run the task (does not register it) may refill its tokens, but holds
    /// none of them: here it is the refiller of a 1/h limit, its one token stays in the queue, and a task sent to
    /// the worker that runs it starts on that token; the token queue has that worker's consumer only.
    @Test func aWorkerThatDoesNotRunATaskHoldsNoneOfItsTokens() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let log = TokenLog()
        let hourly: (inout WorkerConfiguration) -> Void = {
            $0.tasks[task] = TaskSettings(rateLimit: try! RateLimit.parse("1/h"), rateLimitScope: .cluster)
        }
        let bystander = try await RunningWorker.start(
            queues: [uniqueQueue("cluster-rate-other")],
            register: { registry in try registry.register("cluster.rate.other") { _ in .null } }, configure: hourly)
        #expect(bystander.worker.clusterRateLimits?.handouts[task] == nil, "no token consumer for a task it does not run")
        let probe = try await Connection.open(url: Broker.url)
        func tokenQueue() async throws -> QueueState {
            let channel = try await probe.openChannel()
            defer { Task { try? await channel.close() } }
            return try await channel.inspectQueue(ClusterRateLimits.queue(task))
        }
        // The bystander, alone, is the refiller: its first token is issued at once.
        for _ in 0..<600 where try await tokenQueue().messageCount == 0 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try await tokenQueue().messageCount == 1, "the bystander's token waits in the queue")
        let runner = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register(task) { context in
                    await log.started(context.taskId, RateLimitToken.current)
                    return .null
                }
            },
            configure: hourly)
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send(task, options: SendOptions(queue: queue))
        #expect(try await client.result(for: id, timeout: .seconds(30)).status == .success, "the runner got the token")
        #expect(await log.starts.map { $0.token?.sequence } == [1])
        #expect(try await tokenQueue().consumerCount == 1, "the runner's token consumer only")
        await client.close()
        await probe.close()
        try await runner.stop()
        try await bystander.stop()
        try await deleteTokenQueue(task)
    }

    @Test func remoteRateLimitRefusesAClusterWideLimit() async throws {
        let queue = uniqueQueue("cluster-rate")
        let task = uniqueTask()
        let worker = try await startWorker(queue, task: task, log: TokenLog())
        let requester = try await PidboxRequester.open()
        let answer = try await requester.ask(
            worker.worker.configuration.hostname, "rate_limit", ["task_name": .string(task), "rate_limit": "100/s"])
        #expect(answer["error"]?.stringValue?.contains("cluster-wide") == true, "\(answer)")
        try await requester.close()
        try await worker.stop()
        try await deleteTokenQueue(task)
    }

    @Test func theConfigurationReadsTheScopeAndNamesABadOneByFileLineAndKey() throws {
        let configuration = try TasksConfiguration.parse(
            """
            [tasks."a"]
            rate_limit = "10/s"
            rate_limit_scope = "cluster"

            [tasks."b"]
            rate_limit = "10/s"
            """, file: "t.toml", environment: [:])
        #expect(configuration.tasks["a"]?.rateLimitScope == .cluster)
        #expect(configuration.tasks["b"]?.rateLimitScope == .worker, "worker is the default, as Celery")
        let error = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse(
                "[tasks.\"a\"]\nrate_limit = \"10/s\"\nrate_limit_scope = \"galaxy\"\n", file: "t.toml", environment: [:])
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("t.toml:3") && text.contains("rate_limit_scope") && text.contains("galaxy"), "\(text)")
        let missing = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse("[tasks.\"a\"]\nrate_limit_scope = \"cluster\"\n", file: "t.toml", environment: [:])
        }
        #expect(missing.map { "\($0)" }?.contains("needs a rate_limit") == true)
    }
}

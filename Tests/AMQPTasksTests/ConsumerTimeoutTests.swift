import AMQP
@testable import AMQPTasks
import Foundation
import Testing

/// Tasks longer than the broker's `consumer_timeout`, and redeliveries after a lost acknowledgement: a task runs
/// once and answers once.
///
/// The two tests on the short-timeout node run at the same time (each on its own queue), so the suite takes about
/// one long task's time.
@Suite struct ConsumerTimeoutTests {
    /// The test node with a short `consumer_timeout` that `Deploy/test` starts (in its configuration: a run-time
    /// `set_env` does not take on 3.10), and that timeout.
    static func timeoutNode() throws -> (url: String, timeout: Duration) {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["AMQP_CONSUMER_TIMEOUT_URL"], !url.isEmpty,
            let milliseconds = Int(environment["AMQP_CONSUMER_TIMEOUT_MS"] ?? "")
        else {
            throw TestFailure(
                "AMQP_CONSUMER_TIMEOUT_URL and AMQP_CONSUMER_TIMEOUT_MS are not set: this test needs a broker node whose consumer_timeout is short, as Deploy/test starts it (Deploy/consumer-timeout-node start; then AMQP_CONSUMER_TIMEOUT_URL=amqp://guest:guest@127.0.0.1:$(Deploy/consumer-timeout-node port)/%2f AMQP_CONSUMER_TIMEOUT_MS=30000)"
            )
        }
        return (url, .milliseconds(milliseconds))
    }

    /// A task that runs 2.5 times the broker's consumer_timeout, with two workers on its queue: without custody the
    /// broker closes the channel at the timeout and redelivers the task to the idle worker, which runs it again.
    @Test func aTaskLongerThanTheConsumerTimeoutRunsOnceAndAnswersOnce() async throws {
        let (url, timeout) = try Self.timeoutNode()
        let taskLength = timeout * 5 / 2
        let queue = uniqueQueue("ctimeout")
        let runs = RunLog()
        let register: (inout TaskRegistry) throws -> Void = { registry in
            try registry.register("ct.long") { context in
                await runs.record(context.taskId)
                try await Task.sleep(for: taskLength)
                return "long done"
            }
            try registry.register("ct.short") { context in
                await runs.record(context.taskId)
                return "short done"
            }
        }
        let workers = [
            try await RunningWorker.start(
                queues: [queue], url: url, register: register, configure: { $0.consumerTimeout = timeout }),
            try await RunningWorker.start(
                queues: [queue], url: url, register: register, configure: { $0.consumerTimeout = timeout }),
        ]
        let answers = try await ResultCounter.start(url: url)
        let client = try await TaskClient.connect(url: url)
        var long = client.message("ct.long", options: SendOptions(queue: queue))
        long.replyTo = answers.queue
        try await client.send(long, options: SendOptions(queue: queue))
        try await answers.waitForFinal(of: long.id, within: taskLength + .seconds(180))
        // A redelivery to the other worker would have started long before this answer (at the timeout).
        #expect(await runs.count(long.id) == 1)

        // Both workers still take tasks: two short ones at once need both slots (the long task's consumer started
        // again once it ended).
        var shorts: [String] = []
        for _ in 0..<4 {
            var short = client.message("ct.short", options: SendOptions(queue: queue))
            short.replyTo = answers.queue
            try await client.send(short, options: SendOptions(queue: queue))
            shorts.append(short.id)
        }
        for id in shorts { try await answers.waitForFinal(of: id, within: .seconds(60)) }
        try await Self.waitForConsumers(2, on: queue, url: url)

        #expect(await runs.count(long.id) == 1)
        #expect(await answers.count(of: long.id) == 1)
        #expect(await answers.value(of: long.id) == "long done")
        #expect(await runs.total == 5)
        // The task really went into custody, and its copy was renewed (held for half the timeout each time).
        let taken = workers.map { $0.worker.custodyTally.taken }.reduce(0, +)
        let renewed = workers.map { $0.worker.custodyTally.renewed }.reduce(0, +)
        #expect(taken == 1)
        #expect(renewed >= 1)
        await client.close()
        await answers.close()
        for worker in workers { try await worker.stop() }
        try await Self.expectEmptyAndDelete(queue, url: url)
    }

    /// Custody off, one worker with two slots: the broker's consumer_timeout closes the first slot's channel and
    /// redelivers the task to the second slot, which waits for the run instead of running it again; the outcome is
    /// recorded on a new channel of the first slot, and the redeliveries that follow are acknowledged unrun.
    @Test func withoutCustodyARedeliveryToTheSameWorkerWaitsForTheRun() async throws {
        let (url, timeout) = try Self.timeoutNode()
        let taskLength = timeout * 5 / 2
        let queue = uniqueQueue("ctimeout-same")
        let runs = RunLog()
        let worker = try await RunningWorker.start(
            queues: [queue], concurrency: 2, url: url,
            register: { registry in
                try registry.register("ct.long") { context in
                    await runs.record(context.taskId)
                    try await Task.sleep(for: taskLength)
                    return "long done"
                }
                try registry.register("ct.short") { context in
                    await runs.record(context.taskId)
                    return "short done"
                }
            },
            configure: { $0.consumerTimeout = nil })
        let answers = try await ResultCounter.start(url: url)
        let client = try await TaskClient.connect(url: url)
        var long = client.message("ct.long", options: SendOptions(queue: queue))
        long.replyTo = answers.queue
        try await client.send(long, options: SendOptions(queue: queue))
        try await answers.waitForFinal(of: long.id, within: taskLength + .seconds(180))
        #expect(await runs.count(long.id) == 1)
        // Answered: the redeliveries that are left come before this task in the queue.
        var short = client.message("ct.short", options: SendOptions(queue: queue))
        short.replyTo = answers.queue
        try await client.send(short, options: SendOptions(queue: queue))
        try await answers.waitForFinal(of: short.id, within: .seconds(60))
        try await Self.waitForConsumers(2, on: queue, url: url)

        #expect(await runs.count(long.id) == 1)
        #expect(await answers.count(of: long.id) == 1)
        #expect(await runs.count(short.id) == 1)
        await client.close()
        await answers.close()
        try await worker.stop()
        try await Self.expectEmptyAndDelete(queue, url: url)
    }

    /// A task in custody whose outcome cannot be recorded goes back to its queue at once (its custody copy is
    /// rejected, so it is dead-lettered there) and runs again, up to `record_attempts` times, then goes to
    /// `<queue>.dead`: the custody copy never strands it. On the usual broker, with `[worker] consumer_timeout` set
    /// to 4 s so each run goes into custody (at 2 s) before it ends.
    @Test func aTaskInCustodyWhoseOutcomeCannotBeRecordedGoesBackToItsQueue() async throws {
        let queue = uniqueQueue("custody-requeue")
        let runs = RunLog()
        let box = WorkerBox()
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("custody.record.me") { context in
                    await runs.record(context.taskId)
                    let run = await runs.count(context.taskId)
                    // Ends only once this run is in custody.
                    try await box.waitUntilCustodyTaken(run)
                    return "done"
                }
            },
            configure: { $0.consumerTimeout = .seconds(4) })
        await box.set(worker.worker)
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        // A reply queue that refuses every message: the broker nacks the worker's result publish.
        let replies = uniqueQueue("full-replies")
        try await channel.declareQueue(
            replies, durable: false, arguments: ["x-max-length": 0, "x-overflow": "reject-publish"])
        // Another worker's custody queue (without its time to live, so a copy routed there would stay): it must
        // receive none of this worker's copies.
        let decoy = CustodyQueue(hostname: "decoy", consumerTimeout: .seconds(4))
        try await channel.declareExchange(CustodyQueue.exchange, type: .headers, durable: true)
        try await channel.declareQueue(decoy.name, durable: false, autoDelete: false)
        try await channel.bindQueue(decoy.name, to: CustodyQueue.exchange, arguments: decoy.bindingArguments)
        try await channel.confirmSelect()
        var message = TaskMessage(name: "custody.record.me")
        message.replyTo = replies
        let (properties, body) = message.encode()
        try await channel.publish(body, routingKey: queue, properties: properties)

        let dead = try await BadInputTests.waitForDeadLetter(in: queue, on: channel)
        #expect(dead.properties.headers?[DeadLetters.Header.reason] == "outcome-not-recorded")
        #expect(await runs.count(message.id) == WorkerConfiguration.defaultRecordAttempts)
        #expect(worker.worker.custodyTally.taken == WorkerConfiguration.defaultRecordAttempts)
        #expect(try await channel.inspectQueue(decoy.name).messageCount == 0)
        try await channel.deleteQueue(decoy.name)
        try await worker.stop()
        #expect(try await channel.inspectQueue(queue).messageCount == 0)
        try await channel.deleteQueue(queue)
        try await channel.deleteQueue(replies)
        await connection.close()
    }

    /// An `amqp-worker` SIGKILLed while its task is in custody: the copy it held goes back to the task queue,
    /// dead-lettered from its custody queue (already past its time to live), so another worker can run it: nothing
    /// is lost. On the usual broker, with `[worker] consumer_timeout = "10s"` (custody at 5 s).
    @Test func aWorkerThatDiesWithATaskInCustodyLosesNothing() async throws {
        let queue = uniqueQueue("custody-kill")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-kill-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("worker.toml")
        try """
            [broker]
            url = "\(Broker.url)"

            [worker]
            consumer_timeout = "10s"
            """.write(to: config, atomically: true, encoding: .utf8)
        let worker = try WorkerProcess(["--config", config.path, "--demo-tasks", "--queue", queue], includeURL: false)
        try await worker.waitFor("consuming \(queue)")
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("demo.sleep", args: [600], options: SendOptions(queue: queue))
        try await worker.waitFor("now held in custody queue", seconds: 60)
        worker.signal(SIGKILL)
        _ = try await worker.exitStatus()

        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        var back: Delivery?
        for _ in 0..<1200 where back == nil {
            back = try await channel.get(queue: queue, autoAck: true)
            if back == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let message = try #require(back, "the task never came back to \(queue) after its worker died")
        #expect(message.properties.headers?["id"]?.stringValue == id)
        let death = message.properties.headers?["x-death"]?.arrayValue?.first?.tableValue
        #expect(death?["queue"]?.stringValue?.hasPrefix("amqp-tasks.custody.") == true, "\(String(describing: death))")
        #expect(death?["reason"]?.stringValue == "expired")
        #expect(try await channel.inspectQueue(queue).messageCount == 0)
        try await channel.deleteQueue(queue)
        await connection.close()
        await client.close()
    }

    /// A worker idle on a task with a cluster-wide rate limit: its token consumer holds the token it was delivered
    /// past the broker's consumer_timeout, the broker closes that channel and the token goes back to the queue; the
    /// worker opens its consumer again (README: "opened again a second later"), and a task sent then starts on that
    /// same token (at 1/h the refiller issues no other within the test).
    @Test func anIdleTokenConsumerPastTheConsumerTimeoutIsOpenedAgainAndItsTokenStillServes() async throws {
        let (url, timeout) = try Self.timeoutNode()
        let queue = uniqueQueue("ctimeout-rate")
        let task = "ct.rate.\(UUID().uuidString.prefix(8).lowercased())"
        let taken = TakenTokens()
        let worker = try await RunningWorker.start(
            queues: [queue], url: url,
            register: { registry in
                try registry.register(task) { _ in
                    await taken.add(RateLimitToken.current)
                    return .null
                }
            },
            configure: { $0.tasks[task] = TaskSettings(rateLimit: try! RateLimit.parse("1/h"), rateLimitScope: .cluster) })
        let handout = try #require(worker.worker.clusterRateLimits?.handouts[task])
        // Only a consumer that held a token past the timeout is closed by the broker: wait for the reopening.
        let deadline = ContinuousClock.now + timeout * 3 + .seconds(60)
        while handout.openings < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
        #expect(handout.openings >= 2, "the token consumer was opened again after the broker closed its channel")
        let client = try await TaskClient.connect(url: url)
        let id = try await client.send(task, options: SendOptions(queue: queue))
        #expect(try await client.result(for: id, timeout: .seconds(60)).status == .success, "the task got a token")
        #expect(await taken.sequences == [1], "it ran on the one token issued, returned by the broker and taken again")
        await client.close()
        try await worker.stop()
        let connection = try await Connection.open(url: url)
        _ = try await connection.openChannel().deleteQueue(ClusterRateLimits.queue(task))
        await connection.close()
    }

    /// Expects `queue` to hold nothing (every task answered once, no redelivery left), then deletes it.
    static func expectEmptyAndDelete(_ queue: String, url: String) async throws {
        let connection = try await Connection.open(url: url)
        let channel = try await connection.openChannel()
        #expect(try await channel.inspectQueue(queue).messageCount == 0)
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    /// Waits until `queue` has `count` consumers (the slots took tasks again after a long one).
    static func waitForConsumers(_ count: UInt32, on queue: String, url: String) async throws {
        let connection = try await Connection.open(url: url)
        defer { Task { await connection.close() } }
        let channel = try await connection.openChannel()
        for _ in 0..<600 {
            if try await channel.inspectQueue(queue).consumerCount == count { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("\(queue) never had \(count) consumers again")
    }

    /// A worker on a queue of its own whose handler `task` logs its runs, and whose connection `closer` closes
    /// once, after the first recorded outcome (`before` runs ahead of the closer).
    func startLostAckWorker(
        _ task: String, before: [any TaskMiddleware] = []
    ) async throws -> (queue: String, runs: RunLog, closer: CloseConnectionAfterRecord, worker: RunningWorker) {
        let queue = uniqueQueue(task.replacingOccurrences(of: ".", with: ""))
        let runs = RunLog()
        let hostname = "\(task)-\(UUID().uuidString.prefix(8))@harness"
        let closer = CloseConnectionAfterRecord(connectionName: "amqp-worker \(hostname)", queue: queue)
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register(task) { context in
                    await runs.record(context.taskId)
                    return "ran"
                }
            },
            configure: {
                $0.hostname = hostname
                $0.maxReconnectDelay = .seconds(2)
            },
            middleware: before + [closer])
        return (queue, runs, closer, worker)
    }

    /// The worker's connection is closed after the outcome was recorded and before the ack: the broker redelivers
    /// the task, and the worker acknowledges it without running it again.
    @Test func aRedeliveryAfterALostAckDoesNotRunTheTaskAgain() async throws {
        let (queue, runs, closer, worker) = try await startLostAckWorker("lost.ack")
        let answers = try await ResultCounter.start(url: Broker.url)
        let client = try await TaskClient.connect(url: Broker.url)
        var first = client.message("lost.ack", options: SendOptions(queue: queue))
        first.replyTo = answers.queue
        try await client.send(first, options: SendOptions(queue: queue))
        try await answers.waitForFinal(of: first.id, within: .seconds(60))
        try await closer.waitUntilClosed()
        // The redelivery is ahead of this one in the queue: once this one is answered, the redelivery was settled.
        var second = client.message("lost.ack", options: SendOptions(queue: queue))
        second.replyTo = answers.queue
        try await client.send(second, options: SendOptions(queue: queue))
        try await answers.waitForFinal(of: second.id, within: .seconds(60))

        #expect(await closer.closedConnections == 1)
        #expect(await runs.count(first.id) == 1)
        #expect(await answers.count(of: first.id) == 1)
        #expect(await runs.count(second.id) == 1)
        await client.close()
        await answers.close()
        try await worker.stop()
    }

    /// A task whose `eta` is ahead is parked in the delay levels; the worker's connection is closed after the park
    /// was confirmed and before the ack. The redelivery is acknowledged without parking a second copy (which would
    /// come back at the same time as the first, and run the task twice).
    @Test func aRedeliveryAfterALostAckOfAParkIsNotParkedAgain() async throws {
        let parks = ParkCounter()
        let (queue, runs, closer, worker) = try await startLostAckWorker("lost.park", before: [parks])
        let answers = try await ResultCounter.start(url: Broker.url)
        let client = try await TaskClient.connect(url: Broker.url)
        // Published straight to the queue, so the worker (not the client) parks it.
        var first = client.message("lost.park", options: SendOptions(queue: queue))
        first.replyTo = answers.queue
        first.eta = CeleryTime.format(Date().addingTimeInterval(5))
        let (properties, body) = first.encode()
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        try await channel.publish(OutgoingMessage(body: body, routingKey: queue, properties: properties))
        try await closer.waitUntilClosed()
        // The redelivery is ahead of this one in the queue: once this one is answered, the redelivery was settled.
        var marker = client.message("lost.park", options: SendOptions(queue: queue))
        marker.replyTo = answers.queue
        try await client.send(marker, options: SendOptions(queue: queue))
        try await answers.waitForFinal(of: marker.id, within: .seconds(60))
        #expect(await parks.count(first.id) == 1, "the redelivery of a confirmed park was parked again")
        try await answers.waitForFinal(of: first.id, within: .seconds(60))
        #expect(await runs.count(first.id) == 1)
        await connection.close()
        await client.close()
        await answers.close()
        try await worker.stop()
    }
}

/// Counts, per task id, the outcomes that parked the task in the delay levels.
actor ParkCounter: TaskMiddleware {
    private var parks: [String: Int] = [:]

    nonisolated func recorded(_ outcome: TaskOutcome, of task: TaskContext) async {
        if case .deferred = outcome { await parked(task.taskId) }
    }

    private func parked(_ id: String) { parks[id, default: 0] += 1 }

    func count(_ id: String) -> Int { parks[id] ?? 0 }
}

/// Counts the final results (SUCCESS, FAILURE…) that arrive on a reply queue of its own, per task id.
actor ResultCounter {
    let queue = "test.answers.\(UUID().uuidString.prefix(8).lowercased())"
    private let connection: Connection
    private var finals: [String: [JSONValue]] = [:]
    private var reader: Task<Void, Never>?

    private init(connection: Connection) { self.connection = connection }

    static func start(url: String) async throws -> ResultCounter {
        let counter = ResultCounter(connection: try await Connection.open(url: url))
        try await counter.listen()
        return counter
    }

    private func listen() async throws {
        let channel = try await connection.openChannel()
        try await channel.declareQueue(queue, durable: false, autoDelete: true)
        let consumer = try await channel.consume(queue: queue)
        reader = Task {
            do {
                for try await delivery in consumer {
                    self.arrived(delivery.body)
                    try? await delivery.ack()
                }
            } catch {}
        }
    }

    private func arrived(_ body: Data) {
        guard let result = try? JSONValue.parse(body), let id = result["task_id"]?.stringValue,
            let status = result["status"]?.stringValue, ["SUCCESS", "FAILURE", "REVOKED"].contains(status)
        else { return }
        finals[id, default: []].append(result["result"] ?? .null)
    }

    func count(of id: String) -> Int { finals[id]?.count ?? 0 }
    func value(of id: String) -> JSONValue? { finals[id]?.first }

    func waitForFinal(of id: String, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while count(of: id) == 0 {
            guard ContinuousClock.now < deadline else { throw TestFailure("no result for task \(id) within \(limit)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func close() async {
        reader?.cancel()
        await connection.close()
    }
}

/// Once a task's outcome is recorded (its `recorded` hook runs between the record and the ack), closes the worker's
/// connection through the management API, and returns only when the broker no longer lists that connection: the
/// ack that follows is certainly lost.
actor CloseConnectionAfterRecord: TaskMiddleware {
    let connectionName: String
    let queue: String
    private(set) var closedConnections = 0
    private var failure: String?

    init(connectionName: String, queue: String) {
        self.connectionName = connectionName
        self.queue = queue
    }

    nonisolated func recorded(_ outcome: TaskOutcome, of task: TaskContext) async {
        // In a task of its own: losing the connection may cancel the worker's task that runs this hook, and a
        // cancelled wait would report a CancellationError instead of the close it was waiting for.
        await Task { await self.closeOnce() }.value
    }

    private func closeOnce() async {
        guard closedConnections == 0, failure == nil else { return }
        do {
            try await closeWorkerConnection()
            closedConnections += 1
        } catch {
            failure = "\(error)"
        }
    }

    private func closeWorkerConnection() async throws {
        let api = "http://127.0.0.1:\(ManagementAPIProbe.port)/api/connections"
        var name: String?
        for _ in 0..<300 where name == nil {
            let listing = try ManagementAPIProbe.run(["curl", "-sf", "-u", "guest:guest", api])
            name = (try? JSONValue.parse(Data(listing.utf8)))?.arrayValue?
                .first { $0["user_provided_name"]?.stringValue == connectionName }?["name"]?.stringValue
            if name == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard let name else { throw TestFailure("the management API never listed the connection \(connectionName)") }
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name
        _ = try ManagementAPIProbe.run(["curl", "-sf", "-u", "guest:guest", "-X", "DELETE", "\(api)/\(encoded)"])
        // Gone from the broker's list: an ack sent on it now is lost, and its task is back in the queue (where the
        // worker, reconnected, may already have taken it again, so its message count proves nothing).
        for _ in 0..<600 {
            let listing = try ManagementAPIProbe.run(["curl", "-sf", "-u", "guest:guest", api])
            let names = (try? JSONValue.parse(Data(listing.utf8)))?.arrayValue?.compactMap { $0["name"]?.stringValue }
            if let names, !names.contains(name) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the broker still lists the connection \(name) after it was closed")
    }

    func waitUntilClosed() async throws {
        for _ in 0..<600 where closedConnections == 0 && failure == nil { try await Task.sleep(for: .milliseconds(50)) }
        if let failure { throw TestFailure(failure) }
        if closedConnections == 0 { throw TestFailure("the worker's connection was never closed") }
    }
}

/// The worker a handler looks at, set once it started.
actor WorkerBox {
    private var worker: Worker?

    func set(_ worker: Worker) { self.worker = worker }

    /// Waits until the worker has taken `count` tasks into custody.
    func waitUntilCustodyTaken(_ count: Int) async throws {
        for _ in 0..<1200 {
            if let worker, worker.custodyTally.taken >= count { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the worker never took task run \(count) into custody")
    }
}

/// The cluster rate-limit tokens the handlers of a test ran on.
actor TakenTokens {
    private var tokens: [RateLimitToken?] = []
    func add(_ token: RateLimitToken?) { tokens.append(token) }
    /// Their sequence numbers (-1 for a run without a token).
    var sequences: [Int] { tokens.map { $0?.sequence ?? -1 } }
}

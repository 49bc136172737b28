import AMQP
@testable import AMQPTasks
import AMQPTasksDemo
import Foundation
import Logging
import Testing

/// Remote control (`celery.pidbox`) against the local broker: what each access level obeys, where replies may go,
/// what a reply that cannot be delivered does, the revoked set's bound and messages that used to trap.
///
/// Serialized: one test deletes the shared exchange `reply.celery.pidbox`.
@Suite(.serialized) struct RemoteControlTests {
    @Test func readOnlyAnswersInspectRefusesRevokeAndHidesArguments() async throws {
        let gate = Gate()
        let worker = try await PidboxWorker.start(access: .readOnly, gate: gate)
        let requester = try await PidboxRequester.open()
        #expect(try await requester.ask(worker.hostname, "ping") == ["ok": "pong"])
        let registered = try await requester.ask(worker.hostname, "registered")
        #expect(registered.arrayValue?.contains("demo.add") == true)

        let refused = try await requester.ask(worker.hostname, "revoke", ["task_id": "some-task", "terminate": true])
        let error = try #require(refused["error"]?.stringValue, "a refused command is answered with an error")
        #expect(error.contains("read-only") && error.contains("remote_control = \"standard\""), "\(error)")
        #expect(try await requester.ask(worker.hostname, "revoked") == [], "the refused revoke revoked nothing")
        let shutdown = try await requester.ask(worker.hostname, "shutdown")
        #expect(shutdown["error"] != nil)
        // Read-only obeys enable_events (Flower shows the worker), with task data hidden in the events it turns on.
        #expect(try await requester.ask(worker.hostname, "enable_events") == ["ok": "task events enabled"])
        #expect(worker.worker.eventToggles.hidesTaskData)

        try await Self.expectActiveHidesArguments(of: worker, asking: requester, gate: gate)
        try await requester.close()
        try await worker.stop()
    }

    /// A task with a secret argument runs (held at `gate`); `inspect active` lists it with its arguments hidden;
    /// then it is let go and succeeds.
    static func expectActiveHidesArguments(
        of worker: PidboxWorker, asking requester: PidboxRequester, gate: Gate
    ) async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("gate.wait", args: ["secret-argument"], options: SendOptions(queue: worker.queue))
        try await gate.waitForWaiters(1)
        let active = try #require(try await requester.ask(worker.hostname, "active").arrayValue)
        #expect(active.map { $0["id"] } == [.string(id)])
        #expect(!active[0].jsonString.contains("secret-argument"), "arguments stay hidden: \(active[0].jsonString)")
        #expect(active[0]["args"] == "<hidden>" && active[0]["kwargs"] == "<hidden>", "\(active[0].jsonString)")
        await gate.open()
        #expect(try await client.result(for: id, timeout: .seconds(20)).status == .success)
        await client.close()
    }

    @Test func standardByDefaultRevokesAndSetsRateLimitsButRefusesWhatStopsOrReshapesTheWorker() async throws {
        let gate = Gate()
        let worker = try await PidboxWorker.start(access: nil, gate: gate)
        let requester = try await PidboxRequester.open()
        #expect(try await requester.ask(worker.hostname, "ping") == ["ok": "pong"])
        let revoked = try await requester.ask(worker.hostname, "revoke", ["task_id": "some-task"])
        #expect(revoked["ok"] != nil, "\(revoked)")
        #expect(try await requester.ask(worker.hostname, "revoked") == ["some-task"])
        let rated = try await requester.ask(worker.hostname, "rate_limit", ["task_name": "demo.add", "rate_limit": "5/s"])
        #expect(rated == ["ok": "new rate limit set successfully"])
        // Each command that stops or reshapes a worker is answered with a refusal naming the level it needs.
        let reshaping: [(String, [String: JSONValue])] = [
            ("shutdown", [:]), ("pool_grow", ["n": 1]), ("pool_shrink", ["n": 1]), ("autoscale", ["max": 4, "min": 1]),
            ("add_consumer", ["queue": "other"]), ("cancel_consumer", ["queue": "other"]),
            ("time_limit", ["task_name": "demo.add", "soft": 1, "hard": 2]), ("pool_restart", [:]),
        ]
        for (method, arguments) in reshaping {
            let answer = try await requester.ask(worker.hostname, method, arguments)
            let error = try #require(answer["error"]?.stringValue, "\(method) is answered with an error: \(answer)")
            #expect(error.contains("is standard") && error.contains("remote_control = \"full\""), "\(error)")
        }
        #expect(!worker.running.isCancelled)
        #expect(try await requester.ask(worker.hostname, "ping") == ["ok": "pong"], "the refused shutdown stopped nothing")
        // Task data stays hidden below full: in `active` and in the events enable_events turns on.
        #expect(try await requester.ask(worker.hostname, "enable_events") == ["ok": "task events enabled"])
        #expect(worker.worker.eventToggles.hidesTaskData)
        try await Self.expectActiveHidesArguments(of: worker, asking: requester, gate: gate)
        try await requester.close()
        try await worker.stop()
    }

    @Test func fullObeysShutdownWithAWarmShutdownAndNoReplyAsCelery() async throws {
        let worker = try await PidboxWorker.start(access: .full)
        let requester = try await PidboxRequester.open()
        #expect(try await requester.ask(worker.hostname, "ping") == ["ok": "pong"])
        try await requester.send(worker.hostname, "shutdown", ["msg": "stop for the test"])
        // run() returns once the warm shutdown has ended; the deadline is only a safety net.
        let ended = ManagedCounter()
        let watcher = Task {
            defer { ended.add(1) }
            try await worker.running.value
        }
        let deadline = Date().addingTimeInterval(60)
        while ended.value == 0, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(ended.value == 1, "shutdown stopped the worker")
        if ended.value == 0 { worker.worker.stop() }  // so a failure does not hang the suite
        try await watcher.value
        // Celery's worker answers shutdown with nothing; ours neither (replies are confirmed before the worker stops).
        #expect(try await requester.channel.get(queue: requester.replyQueue, autoAck: true) == nil)
        try await requester.close()
    }

    @Test func fullSetsTimeLimitsForTasksStartedAfterwardsAsCelery() async throws {
        let worker = try await PidboxWorker.start(access: .full)
        let requester = try await PidboxRequester.open()
        let client = try await TaskClient.connect(url: Broker.url)
        #expect(
            try await requester.ask(worker.hostname, "time_limit", ["task_name": "no.such", "soft": 1])
                == ["error": "unknown task"])
        let invalid = try await requester.ask(worker.hostname, "time_limit", ["task_name": "demo.sleep", "soft": "soon"])
        #expect(invalid["error"]?.stringValue?.contains("soft time limit") == true, "\(invalid)")
        #expect(worker.worker.state.timeLimits.limits(for: "demo.sleep") == nil, "an invalid request changes nothing")

        // A soft limit on a task that has none configured: the handler sees it and answers for itself.
        #expect(
            try await requester.ask(worker.hostname, "time_limit", ["task_name": "demo.soft_sleep", "soft": 0.3])
                == ["ok": "time limits set successfully"])
        let tidy = try await client.send("demo.soft_sleep", args: [30], options: SendOptions(queue: worker.queue))
        #expect(try await client.result(for: tidy, timeout: .seconds(20)).result == ["soft_time_limit_exceeded": true])

        // A hard limit on a handler registered without one: it runs on a handler thread and is stopped at the limit.
        #expect(
            try await requester.ask(worker.hostname, "time_limit", ["task_name": "demo.stubborn_sleep", "hard": "0.5"])
                == ["ok": "time limits set successfully"])
        let stubborn = try await client.send("demo.stubborn_sleep", args: [3], options: SendOptions(queue: worker.queue))
        let stopped = try await client.result(for: stubborn, timeout: .seconds(20))
        #expect(stopped.failure?.type == "TimeLimitExceeded", "\(stopped)")

        // Limits set to 0 (or left out) are none again, as in Celery.
        #expect(
            try await requester.ask(worker.hostname, "time_limit", ["task_name": "demo.soft_sleep", "soft": 0])
                == ["ok": "time limits set successfully"])
        let unlimited = try await client.send("demo.soft_sleep", args: [0.5], options: SendOptions(queue: worker.queue))
        #expect(try await client.result(for: unlimited, timeout: .seconds(20)).result == 0.5)
        await client.close()
        try await requester.close()
        try await worker.stop()
    }

    @Test func fullAnswersPoolRestartWithAnErrorSayingWhy() async throws {
        let worker = try await PidboxWorker.start(access: .full)
        let requester = try await PidboxRequester.open()
        let answer = try await requester.ask(worker.hostname, "pool_restart")
        #expect(answer["error"]?.stringValue?.contains("no pool processes to restart") == true, "\(answer)")
        #expect(try await requester.ask(worker.hostname, "ping") == ["ok": "pong"])
        try await requester.close()
        try await worker.stop()
    }

    @Test func fullRevokesTerminatesAndShowsArguments() async throws {
        let worker = try await PidboxWorker.start(access: .full)
        let requester = try await PidboxRequester.open()
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("demo.sleep", args: [30.5], options: SendOptions(queue: worker.queue))
        let active = try await requester.waitForActive(worker.hostname, id)
        #expect(active["args"] == [30.5], "\(active)")
        let answer = try await requester.ask(worker.hostname, "revoke", ["task_id": .string(id), "terminate": true])
        #expect(answer["ok"] != nil, "\(answer)")
        #expect(try await client.result(for: id, timeout: .seconds(20)).status == .revoked)
        #expect(try await requester.ask(worker.hostname, "revoked") == [.string(id)])
        await client.close()
        try await requester.close()
        try await worker.stop()
    }

    @Test func allTurnsEventsOnAndOffAtRunTimeAndAnswersAsCelery() async throws {
        let worker = try await PidboxWorker.start(access: .all)
        let other = try await PidboxWorker.start(access: .all)
        let requester = try await PidboxRequester.open()
        let watcher = try await requester.connection.openChannel()
        try await EventPublisher.declare(on: watcher)
        let events = try await watcher.declareQueue("", durable: false, exclusive: true).name
        try await watcher.bindQueue(events, to: EventPublisher.exchange, routingKey: "#")

        #expect(try await requester.ask(worker.hostname, "enable_events") == ["ok": "task events enabled"])
        #expect(try await requester.ask(worker.hostname, "enable_events") == ["ok": "task events already enabled"])
        var online = false
        for _ in 0..<300 where !online {
            if let delivery = try await watcher.get(queue: events, autoAck: true) {
                let event = try JSONValue.parse(delivery.body)
                online = event["type"] == "worker-online" && event["hostname"] == .string(worker.hostname)
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(online, "enable_events sends worker-online")
        // Each worker has its own switch: the other one, in the same process, stays silent.
        #expect(!other.worker.eventToggles.taskEvents && !other.worker.eventToggles.workerEvents)

        #expect(try await requester.ask(worker.hostname, "disable_events") == ["ok": "task events disabled"])
        #expect(try await requester.ask(worker.hostname, "disable_events") == ["ok": "task events already disabled"])
        #expect(!worker.worker.eventToggles.taskEvents && worker.worker.eventToggles.workerEvents,
                "heartbeats go on after disable_events, as a Celery worker's do")
        try await watcher.close()
        try await requester.close()
        try await other.stop()
        try await worker.stop()
    }

    @Test func repliesGoOnlyToTheReplyExchangeWithABoundedKey() async throws {
        let worker = try await PidboxWorker.start(access: .all)
        let requester = try await PidboxRequester.open()
        // A requester asks the worker to publish, under its identity, to an exchange of the requester's choosing.
        let elsewhere = "test.elsewhere.\(UUID().uuidString.prefix(8))"
        try await requester.channel.declareExchange(elsewhere, type: .direct, durable: false, autoDelete: true)
        let captured = try await requester.channel.declareQueue("", durable: false, exclusive: true).name
        try await requester.channel.bindQueue(captured, to: elsewhere, routingKey: requester.key)
        let refused = try await requester.ask(
            worker.hostname, "ping", replyTo: ["exchange": .string(elsewhere), "routing_key": .string(requester.key)])
        #expect(refused["error"]?.stringValue?.contains(RemoteControl.replyExchange) == true, "\(refused)")
        // Replies are published one at a time, in order: the refusal came, so nothing else was sent before it.
        #expect(try await requester.channel.inspectQueue(captured).messageCount == 0, "nothing went to \(elsewhere)")

        // A routing key longer than the bound gets no reply; the next request, answered, shows it was handled.
        let longKey = String(repeating: "k", count: RemoteControl.maxReplyKeyLength + 1)
        let longQueue = try await requester.channel.declareQueue("", durable: false, exclusive: true).name
        try await requester.channel.bindQueue(longQueue, to: RemoteControl.replyExchange, routingKey: longKey)
        try await requester.send(
            worker.hostname, "ping", replyTo: ["exchange": .string(RemoteControl.replyExchange), "routing_key": .string(longKey)])
        #expect(try await requester.ask(worker.hostname, "ping") == ["ok": "pong"])
        #expect(try await requester.channel.inspectQueue(longQueue).messageCount == 0)
        try await requester.close()
        try await worker.stop()
    }

    @Test func aReplyThatCannotBeDeliveredLeavesRemoteControlAndRunningTasksAlone() async throws {
        let gate = Gate()
        let runs = RunLog()
        let worker = try await PidboxWorker.start(access: .all, gate: gate, runs: runs)
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("gate.wait", args: [1], options: SendOptions(queue: worker.queue))
        try await gate.waitForWaiters(1)
        let requester = try await PidboxRequester.open()
        #expect(try await requester.ask(worker.hostname, "ping") == ["ok": "pong"])
        // Someone deletes the reply exchange: the next reply goes to a missing exchange (404 closes its channel).
        try await requester.channel.deleteExchange(RemoteControl.replyExchange)
        try await requester.send(worker.hostname, "ping")
        // The worker declares it again for its next attempt; wait until it exists, then listen on it again.
        try await requester.waitForExchange(RemoteControl.replyExchange)
        try await requester.channel.bindQueue(requester.replyQueue, to: RemoteControl.replyExchange, routingKey: requester.key)
        #expect(try await requester.ask(worker.hostname, "ping") == ["ok": "pong"])
        await gate.open()
        #expect(try await client.result(for: id, timeout: .seconds(20)).status == .success)
        #expect(await runs.count(id) == 1, "the running task was not interrupted and run again")
        await client.close()
        try await requester.close()
        try await worker.stop()
    }

    @Test func thePidboxConsumerHasAPrefetch() async throws {
        let worker = try await PidboxWorker.start(access: nil)
        let prefetch = try await ManagementAPIProbe.prefetchCount(ofConsumerOn: "\(worker.hostname).celery.pidbox")
        #expect(prefetch == Int(RemoteControl.prefetch))
        #expect(prefetch > 0, "0 means unlimited")
        try await worker.stop()
    }

    @Test func theRevokedSetIsBounded() async throws {
        // A stream of its own: the flood reaches no other test's workers, and no later run's.
        let stream = "test.revoked.\(UUID().uuidString.prefix(8).lowercased())"
        let worker = try await PidboxWorker.start(access: .all, revokeLog: stream)
        let requester = try await PidboxRequester.open()
        let ids = (0..<(WorkerState.revokedCapacity + 1000)).map { JSONValue.string("flood-\($0)") }
        _ = try await requester.ask(worker.hostname, "revoke", ["task_id": .array(ids)])
        let revoked = try #require(try await requester.ask(worker.hostname, "revoked").arrayValue)
        #expect(revoked.count == WorkerState.revokedCapacity)
        #expect(!revoked.contains("flood-0") && revoked.contains(.string("flood-\(ids.count - 1)")), "the oldest go first")
        try await requester.close()
        try await worker.stop()
        let cleanup = try await Connection.open(url: Broker.url)
        try await cleanup.openChannel().deleteQueue(stream)
        await cleanup.close()
    }

    @Test func idsAreForgottenOldestFirstAndAfterTheirLifetime() {
        var set = ExpiringIDSet(capacity: 3, lifetime: 60)
        let start = Date(timeIntervalSince1970: 1_000_000)
        set.insert(["a", "b", "c"], at: start)
        set.insert(["d"], at: start.addingTimeInterval(2))
        #expect(set.count == 3)
        #expect(!set.contains("a", at: start.addingTimeInterval(2)) && set.contains("d", at: start.addingTimeInterval(2)))
        #expect(!set.contains("b", at: start.addingTimeInterval(61)), "past its lifetime")
        set.insert(["e"], at: start.addingTimeInterval(61))
        #expect(set.ids(at: start.addingTimeInterval(61)) == ["d", "e"])
        for round in 0..<10_000 { set.insert(["x\(round)"], at: start.addingTimeInterval(62)) }
        #expect(set.count == 3)
        set.remove("x9999")
        #expect(!set.contains("x9999", at: start.addingTimeInterval(62)) && set.count == 2)
        set.insert(["x9999"], at: start.addingTimeInterval(63))
        #expect(set.ids(at: start.addingTimeInterval(63)) == ["x9997", "x9998", "x9999"].sorted())
    }

    @Test func aClockOfIntMaxDoesNotStopTheWorker() async throws {
        let hostname = "clock-\(UUID().uuidString.prefix(8))@test"
        let worker = try WorkerProcess(["--demo-tasks", "--queue", uniqueQueue("clock"), "--hostname", hostname])
        try await worker.waitFor("consuming")
        let requester = try await PidboxRequester.open()
        try await requester.waitForPidbox(of: hostname)
        for clock: FieldValue in [.int64(Int64.max), .uint64(UInt64.max), .int64(Int64.min), .double(1e300)] {
            let answer = try await requester.ask(hostname, "ping", headers: ["clock": clock])
            #expect(answer == ["ok": "pong"], "clock \(clock)")
            // Replies carry the next tick; a second request makes the worker tick again past Int.max.
            #expect(try await requester.ask(hostname, "stats")["pid"] != nil)
        }
        #expect(worker.process.isRunning, "\(worker.output)")
        try await requester.close()
        worker.signal(SIGTERM)
        #expect(try await worker.exitStatus() == 0)
    }

    @Test func remoteControlOffDeclaresNoPidboxQueue() async throws {
        let hostname = "off-\(UUID().uuidString.prefix(8))@test"
        let worker = try WorkerProcess([
            "--demo-tasks", "--queue", uniqueQueue("off"), "--hostname", hostname, "--remote-control", "off",
        ])
        try await worker.waitFor("remote control is off")
        try await worker.waitFor("consuming")
        let connection = try await Connection.open(url: Broker.url)
        let error = await #expect(throws: AMQPError.self) {
            try await connection.openChannel().inspectQueue("\(hostname).celery.pidbox")
        }
        #expect(error?.replyCode == .notFound)
        await connection.close()
        worker.signal(SIGTERM)
        #expect(try await worker.exitStatus() == 0)
    }

    @Test func theConfigurationFileSetsRemoteControl() throws {
        for (spelling, level) in [
            ("all", RemoteControlAccess.full), ("full", .full), ("standard", .standard), ("read-only", .readOnly),
            ("off", .off),
        ] {
            let parsed = try TasksConfiguration.parse(
                "[worker]\nremote_control = \"\(spelling)\"\n", file: "t.toml", environment: [:])
            #expect(WorkerConfiguration(configuration: parsed).remoteControl == level, "\(spelling)")
        }
        #expect(WorkerConfiguration(configuration: TasksConfiguration()).remoteControl == .standard)
        let errors = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse("[worker]\nremote_control = \"yes\"\n", file: "t.toml", environment: [:])
        }
        #expect(errors?.description.contains("worker.remote_control") == true)
        for spelling in ["off", "read-only", "standard", "full", "all"] {
            #expect(errors?.description.contains("\"\(spelling)\"") == true || errors?.description.contains(spelling) == true)
        }
    }
}

/// An in-process worker with remote control, a `gate.wait` task and a name of its own.
struct PidboxWorker {
    let hostname: String
    let queue: String
    let running: Task<Void, Error>
    let worker: Worker

    static func start(
        access: RemoteControlAccess?, gate: Gate = Gate(), runs: RunLog = RunLog(), revokeLog: String? = nil,
        log: (any LogHandler)? = nil, configure: (inout WorkerConfiguration) throws -> Void = { _ in }
    ) async throws -> PidboxWorker {
        let queue = uniqueQueue("pidbox")
        var configuration = try WorkerConfiguration(url: Broker.url)
        configuration.revokeLog = revokeLog
        configuration.queues = [queue]
        configuration.gracePeriod = .seconds(5)
        configuration.hostname = "pidbox-\(UUID().uuidString.prefix(8))@test"
        if let access { configuration.remoteControl = access }
        try configure(&configuration)
        var registry = TaskRegistry()
        try DemoTasks.register(in: &registry)
        try registry.register("gate.wait") { task in
            await runs.record(task.message.id)
            await gate.wait()
            return "released"
        }
        var logger = log.map { handler in Logger(label: "amqp-tasks.worker") { _ in handler } }
            ?? Logger(label: "amqp-tasks.worker")
        logger.logLevel = log == nil ? .warning : .trace
        let worker = Worker(configuration: configuration, registry: registry, logger: logger)
        let running = Task { try await worker.run() }
        let requester = try await PidboxRequester.open()
        try await requester.waitForPidbox(of: configuration.hostname)
        try await requester.waitForConsumer(on: queue)
        try await requester.close()
        return PidboxWorker(hostname: configuration.hostname, queue: queue, running: running, worker: worker)
    }

    func stop() async throws {
        worker.stop()
        try await running.value
    }
}

/// Sends Celery pidbox requests as `celery inspect` does and collects the replies from its own reply queue.
struct PidboxRequester {
    let connection: Connection
    let channel: Channel
    /// The routing key replies to this requester carry (Celery's `oid`).
    let key: String
    let replyQueue: String

    static func open() async throws -> PidboxRequester {
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        let key = UUID().uuidString.lowercased()
        try await channel.declareExchange(RemoteControl.exchange, type: .fanout, durable: false)
        try await channel.declareExchange(RemoteControl.replyExchange, type: .direct, durable: false)
        let queue = try await channel.declareQueue("\(key).reply.celery.pidbox", durable: false, exclusive: true).name
        try await channel.bindQueue(queue, to: RemoteControl.replyExchange, routingKey: key)
        return PidboxRequester(connection: connection, channel: channel, key: key, replyQueue: queue)
    }

    /// Publishes one request; returns its ticket.
    @discardableResult
    func send(
        _ hostname: String, _ method: String, _ arguments: [String: JSONValue] = [:], replyTo: JSONValue? = nil,
        headers: FieldTable = [:]
    ) async throws -> String {
        let ticket = UUID().uuidString.lowercased()
        let request: JSONValue = [
            "method": .string(method), "arguments": .object(arguments), "destination": [.string(hostname)],
            "ticket": .string(ticket),
            "reply_to": replyTo ?? ["exchange": .string(RemoteControl.replyExchange), "routing_key": .string(key)],
        ]
        var allHeaders: FieldTable = ["clock": .int32(1)]
        for (name, value) in headers { allHeaders[name] = value }
        try await channel.publish(
            request.jsonData(), exchange: RemoteControl.exchange, routingKey: "",
            properties: BasicProperties(contentType: "application/json", contentEncoding: "utf-8", headers: allHeaders))
        return ticket
    }

    /// Sends a request and returns the worker's answer (the value under its hostname).
    func ask(
        _ hostname: String, _ method: String, _ arguments: [String: JSONValue] = [:], replyTo: JSONValue? = nil,
        headers: FieldTable = [:]
    ) async throws -> JSONValue {
        let ticket = try await send(hostname, method, arguments, replyTo: replyTo, headers: headers)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let delivery = try await channel.get(queue: replyQueue, autoAck: true) {
                guard delivery.properties.headers?["ticket"]?.stringValue == ticket else { continue }
                return try #require(try JSONValue.parse(delivery.body)[hostname])
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("\(hostname) did not answer \(method) within 30 s")
    }

    /// Waits until `exchange` exists (a fresh channel each time: a missing exchange's 404 closes it).
    func waitForExchange(_ exchange: String) async throws {
        for _ in 0..<300 {
            let probe = try await connection.openChannel()
            if (try? await probe.checkExchange(exchange)) != nil {
                try? await probe.close()
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("exchange \(exchange) does not exist after 30 s")
    }

    /// Asks `inspect active` until it lists task `id`; returns its entry.
    func waitForActive(_ hostname: String, _ id: String) async throws -> JSONValue {
        for _ in 0..<300 {
            if let entry = try await ask(hostname, "active").arrayValue?.first(where: { $0["id"] == .string(id) }) {
                return entry
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("\(hostname) never listed task \(id) as active")
    }

    /// Waits until `hostname` answers a ping (its pidbox queue is exclusive: other connections cannot inspect it).
    func waitForPidbox(of hostname: String) async throws {
        for _ in 0..<30 {
            let ticket = try await send(hostname, "ping")
            for _ in 0..<50 {
                if let delivery = try await channel.get(queue: replyQueue, autoAck: true),
                    delivery.properties.headers?["ticket"]?.stringValue == ticket
                {
                    return
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        throw TestFailure("\(hostname) did not answer a ping within 30 s")
    }

    /// Waits until `queue` has a consumer (a fresh channel each time: a missing queue's 404 closes it).
    func waitForConsumer(on queue: String) async throws {
        for _ in 0..<300 {
            let probe = try await connection.openChannel()
            let consumers = (try? await probe.inspectQueue(queue))?.consumerCount ?? 0
            try? await probe.close()
            if consumers > 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("\(queue) has no consumer after 30 s")
    }

    func close() async throws {
        await connection.close()
    }
}

/// Reads consumer details from the local broker's management API (`Deploy/broker` enables it).
enum ManagementAPIProbe {
    static let port = Int(ProcessInfo.processInfo.environment["AMQP_BROKER_MANAGEMENT_PORT"] ?? "") ?? 15672

    /// The prefetch count of the consumer on `queue`, once the broker lists it.
    static func prefetchCount(ofConsumerOn queue: String) async throws -> Int {
        for _ in 0..<300 {
            let output = try run(["curl", "-sf", "-u", "guest:guest", "http://127.0.0.1:\(port)/api/consumers/%2F"])
            if let consumers = try? JSONValue.parse(Data(output.utf8)).arrayValue,
                let consumer = consumers.first(where: { $0["queue"]?["name"]?.stringValue == queue }),
                let prefetch = consumer["prefetch_count"]?.intValue
            {
                return prefetch
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the management API on port \(port) never listed a consumer on \(queue)")
    }

    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

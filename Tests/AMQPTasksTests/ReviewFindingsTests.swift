import AMQP
@testable import AMQPTasks
import AMQPTasksDemo
import Foundation
import Testing

/// Findings of the review of the issue-12 fixes (`git log 6bd70d8..abf202a`): each test shows one way a single
/// message, or one unlucky event, still stops, stalls or loops a worker, or a fix that is incomplete. Each fails on
/// the code it was written against and should pass once its finding is fixed.
@Suite struct ReviewFindingsTests {
    /// A user of the vhost other than the worker's (`guest`), with every right on `/`, made with `Deploy/broker ctl`.
    static let producer = "review-producer"
    static let producerURL = "amqp://review-producer:review-producer-password@127.0.0.1:\(Broker.port)/%2f"

    static func makeProducerUser() throws {
        let (added, addText) = try Broker.ctl(["add_user", producer, "review-producer-password"])
        if added != 0, !addText.contains("already exists") { throw TestFailure("add_user \(producer): \(addText)") }
        let (permitted, permitText) = try Broker.ctl(["set_permissions", "-p", "/", producer, ".*", ".*", ".*"])
        if permitted != 0 { throw TestFailure("set_permissions \(producer): \(permitText)") }
    }

    // MARK: 1. A message carrying its producer's validated user_id loops

    /// RabbitMQ validates `user_id`: a publish whose `user_id` is not the publishing connection's user is refused
    /// with 406 and its channel closed. A producer may set its own `user_id` (that is what the feature is for);
    /// the worker copies the message's properties into the delay queue (a task with an `eta`) and into
    /// `<queue>.dead`, so its own publish is refused, its consumer channel closes, the task is requeued at the head
    /// of its queue and comes back to the same consumer, and around it goes: a bad message forever (after
    /// `record_attempts` the dead letter is tried on the channel that just closed, and would carry the same
    /// `user_id` anyway), an ETA task until its ETA — and every task behind it in the queue waits as long.
    @Test func anETATaskWhoseUserIdIsItsProducersDoesNotHoldUpTheTasksBehindIt() async throws {
        try Self.makeProducerUser()
        let queue = uniqueQueue("userid-eta")
        let worker = try await RunningWorker.start(queues: [queue])
        let guest = try await Connection.open(url: Broker.url)
        let replies = uniqueQueue("userid-replies")
        let setup = try await guest.openChannel()
        try await setup.declareQueue(replies, durable: false)
        try await Self.cleaningUp(worker: worker, queues: [queue, replies, DeadLetters.name(for: queue)], on: guest) {
            var later = TaskMessage(name: "demo.add", args: [2, 3])
            later.replyTo = replies
            // 20 s: parked in the 16 s delay queue, then the 4 s one; the test waits for it, so nothing is left parked.
            later.eta = CeleryTime.format(Date().addingTimeInterval(20))
            var (properties, body) = later.encode()
            properties.userId = Self.producer
            try await Self.publish(body, to: queue, properties: properties, as: Self.producerURL)
            var now = TaskMessage(name: "demo.add", args: [4, 5])
            now.replyTo = replies
            let (nowProperties, nowBody) = now.encode()
            try await Self.publish(nowBody, to: queue, properties: nowProperties, as: Broker.url)

            // Both are answered (the safety deadline covers the ETA); the task without an ETA first.
            var order: [String] = []
            let channel = try await guest.openChannel()
            let deadline = Date().addingTimeInterval(90)
            while order.count < 2, Date() < deadline {
                if let result = try await channel.get(queue: replies, autoAck: true), let id = result.properties.correlationId {
                    #expect(try JSONValue.parse(result.body)["status"]?.stringValue == "SUCCESS")
                    order.append(id)
                } else {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(
                order == [now.id, later.id],
                "the task sent second (no ETA) waited behind the ETA task until its ETA: the worker's delay-queue copy keeps the producer's user_id, the broker refuses it (406) and closes the consumer's channel, and the ETA task comes back first, again and again")
        }
    }

    @Test func aBadMessageWhoseUserIdIsItsProducersIsDeadLetteredOnce() async throws {
        try Self.makeProducerUser()
        let queue = uniqueQueue("userid-bad")
        let worker = try await RunningWorker.start(queues: [queue])
        let guest = try await Connection.open(url: Broker.url)
        try await Self.cleaningUp(worker: worker, queues: [queue, DeadLetters.name(for: queue)], on: guest) {
            try await Self.publish(
                Data("{not json".utf8), to: queue,
                properties: BasicProperties(
                    contentType: "application/json", headers: ["task": "demo.add", "id": "userid-bad-1"], userId: Self.producer),
                as: Self.producerURL)
            let channel = try await guest.openChannel()
            let dead: Delivery
            do {
                dead = try await BadInputTests.waitForDeadLetter(in: queue, on: channel, seconds: 60)
            } catch {
                throw TestFailure(
                    "the bad message never reached \(DeadLetters.name(for: queue)) (failed attempts: \(worker.worker.recordAttempts.failures(of: "userid-bad-1"))): its dead-letter copy keeps the producer's user_id, which the broker refuses from the worker's user, closing its channel each time")
            }
            #expect(dead.properties.headers?[DeadLetters.Header.reason] == "invalid-json")
        }
    }

    // MARK: 2. A handler that throws CancellationError by itself is requeued at once, forever

    /// `TaskProcessor.process` takes every `CancellationError` for a shutdown and requeues without a pause; but a
    /// handler may throw one without being cancelled (a library's own timeout, a `Task.checkCancellation()` in a
    /// child it cancelled). Nothing is stopping, nothing was revoked: it is a failure like any other error (Celery
    /// records any exception as FAILURE). Now the task is redelivered and run again in a tight loop.
    @Test func aHandlerThatThrowsCancellationErrorUnaskedFailsOnce() async throws {
        let queue = uniqueQueue("self-cancel")
        let runs = RunLog()
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("throws.cancellation") { context in
                await runs.record(context.taskId)
                throw CancellationError()
            }
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let connection = try await Connection.open(url: Broker.url)
        try await Self.cleaningUp(worker: worker, queues: [queue, DeadLetters.name(for: queue)], on: connection) {
            let id = try await client.send("throws.cancellation", options: SendOptions(queue: queue))
            let result: ResultMessage
            do {
                result = try await client.result(for: id, timeout: .seconds(30))
            } catch {
                throw TestFailure("no result after 30 s; the handler ran \(await runs.count(id)) times: the task loops")
            }
            #expect(result.status == .failure)
            #expect(await runs.count(id) == 1, "ran once, not requeued as if the worker were stopping")
        }
        await client.close()
    }

    // MARK: 3. Delayed tasks for a deleted queue stop every other delayed task of their level

    /// The delay levels dead-letter at least once: a message that finds no binding at `celery_delayed_delivery`
    /// (its queue deleted while it waited) is kept by the level's dead-letter process and retried. That process
    /// takes a bounded number of messages at a time (RabbitMQ's `dead_letter_worker_consumer_prefetch`, 32), so once
    /// that many wait for a deleted queue, no later message of that level is dead-lettered at all. Celery's
    /// `celery_delayed_delivery` cannot get an alternate exchange by argument (a 406 against Celery's declare), so
    /// README "Delayed tasks" asks the operator for a policy that gives it one, `amqp-tasks.due.unroutable`
    /// (`Deploy/broker` sets it): this test fails on a broker without that policy.
    @Test func delayedTasksForADeletedQueueDoNotHoldUpOtherQueues() async throws {
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let gone = uniqueQueue("delay-gone")  // never declared: deleted before its delayed tasks came back
        let live = uniqueQueue("delay-live")
        try await channel.declareQueue(live, durable: true)
        // As a worker consuming it would: the live queue takes the delayed tasks parked for it.
        try await DelayedDeliverySetup.prepare(queues: [live], configuration: nil, on: connection)
        let delay = Duration.milliseconds(8500)
        #expect(NativeDelayedDelivery.delaySeconds(for: delay) == 9)
        do {
            for n in 0..<64 {
                try await NativeDelayedDelivery.publish(
                    OutgoingMessage(body: Data("for a deleted queue \(n)".utf8), routingKey: gone), toQueue: gone,
                    after: delay, on: channel)
            }
            try await NativeDelayedDelivery.publish(
                OutgoingMessage(body: Data("for a live queue".utf8), routingKey: live), toQueue: live, after: delay,
                on: channel)
            let deadline = Date().addingTimeInterval(90)
            var arrived: Delivery?
            while arrived == nil, Date() < deadline {
                arrived = try await channel.get(queue: live, autoAck: true)
                if arrived == nil { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(
                arrived.map { String(decoding: $0.body, as: UTF8.self) } == "for a live queue",
                "a delayed message for a live queue must not wait behind messages for a deleted one (is the policy of README \"Delayed tasks\" set? Deploy/broker start sets it)")
        } catch {
            Issue.record(error)
        }
        // The messages for the deleted queue are not lost: they wait in the unroutable queue (other tests put
        // nothing there; this one empties it again).
        let cleanup = try await connection.openChannel()
        try await BadInputTests.waitUntil("the delayed messages for the deleted queue are set aside") {
            (try? await cleanup.inspectQueue(DelayQueues.unroutable))?.messageCount ?? 0 >= 64
        }
        _ = try? await cleanup.purgeQueue(DelayQueues.unroutable)
        _ = try? await cleanup.deleteQueue(live)
        await connection.close()
    }

    // MARK: 4. A configured queue deleted while the worker runs comes back without its configuration

    /// Before the fix a cancelled consumer failed the connection, and the reconnect declared the configured
    /// topology. Now the consumer restarts on its own and declares its queue with `declareQueueIfMissing`: durable,
    /// classic, no arguments, no bindings. A `[[queues]]` quorum queue (replicated, dead-lettering, delivery limit)
    /// comes back as a plain classic queue; its bindings are gone, so tasks sent through its exchange are dropped
    /// as unroutable (Celery does not publish mandatory); and the next worker start fails on the mismatch.
    @Test func aConfiguredQueueDeletedUnderTheWorkerComesBackAsConfigured() async throws {
        let fixture = ConfiguredTopologyTests.Fixture()
        let configuration = try fixture.configuration()
        let worker = try await RunningWorker.start(queues: [fixture.reports], configure: { $0.topology = configuration })
        let connection = try await Connection.open(url: Broker.url)
        do {
            let channel = try await connection.openChannel()
            _ = try await channel.deleteQueue(fixture.reports)
            try await BadInputTests.waitUntil("the consumer is back") {
                let probe = try await connection.openChannel()
                defer { Task { try? await probe.close() } }
                return (try? await probe.inspectQueue(fixture.reports))?.consumerCount == 1
            }
            // Its binding is there again: a task sent through the exchange is routed.
            let sender = try await connection.openChannel()
            try await sender.confirmSelect()
            do {
                try await sender.publish(
                    OutgoingMessage(
                        body: Data("[[], {}, {}]".utf8), exchange: fixture.exchange, routingKey: "reports.build",
                        properties: BasicProperties(contentType: "application/json", headers: ["task": "demo.add", "id": "cfg-1"]),
                        mandatory: true))
            } catch {
                Issue.record("a task sent through \(fixture.exchange) was not routed to the re-created queue: \(error)")
            }
            // It is the quorum queue the file describes: declaring the topology again (a worker's next start) works.
            do {
                try await Topology.declare(configuration, on: connection)
            } catch {
                Issue.record("the re-created queue contradicts the configuration, so the next worker start fails: \(error)")
            }
        } catch {
            Issue.record(error)
        }
        try await worker.stop()
        await connection.close()
        try await fixture.cleanUp()
    }

    // MARK: 4b. Deliveries already taken back by the broker are still run

    /// With prefetch above 1, when the broker closes a consumer's channel the deliveries still buffered in its
    /// stream were requeued by the close, yet `consume` goes on handing them to the processor: each runs (its side
    /// effects happen), its result publish fails on the closed channel and counts as a failed record attempt, and
    /// the broker's requeued copy runs again. A delivery whose channel is closed should be dropped unrun.
    @Test func aDeliveryOfAChannelTheBrokerClosedIsNotRun() async throws {
        let queue = uniqueQueue("stale")
        let runs = RunLog()
        let gate = Gate()
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("hold") { _ in
                    await gate.wait()
                    return "held"
                }
                try registry.register("count.me") { context in
                    await runs.record(context.taskId)
                    return "counted"
                }
            },
            configure: { $0.prefetch = 3 })
        let client = try await TaskClient.connect(url: Broker.url)
        let connection = try await Connection.open(url: Broker.url)
        try await Self.cleaningUp(worker: worker, queues: [queue, DeadLetters.name(for: queue)], on: connection) {
            let channel = try await connection.openChannel()
            // The dead-letter exchange re-declared with another type: the worker's next dead letter gets 406, which
            // closes its consumer's channel.
            let dead = DeadLetters.name(for: queue)
            try await channel.deleteExchange(dead)
            try await channel.declareExchange(dead, type: .direct, durable: true)
            try await channel.confirmSelect()
            // hold (running), then a bad message, then a good task: all three in the consumer at once.
            _ = try await client.send("hold", options: SendOptions(queue: queue))
            try await gate.waitForWaiters(1)
            try await channel.publish(
                Data("not json".utf8), routingKey: queue,
                properties: BasicProperties(contentType: "application/json", headers: ["task": "demo.add", "id": "stale-bad"]))
            let counted = try await client.send("count.me", options: SendOptions(queue: queue))
            try await BadInputTests.waitUntil("all three are in the consumer") {
                try await channel.inspectQueue(queue).messageCount == 0
            }
            await gate.open()
            try await BadInputTests.waitUntil("the bad message closed the channel") {
                worker.worker.recordAttempts.failures(of: "stale-bad") >= 1
            }
            try await channel.deleteExchange(dead)
            _ = try await client.result(for: counted, timeout: .seconds(60))
            _ = try await BadInputTests.waitForDeadLetter(in: queue, on: channel)
            let timesRun = await runs.count(counted)
            #expect(
                timesRun == 1,
                "count.me ran \(timesRun) times: once from the closed channel's buffer, once more when the broker redelivered it")
            #expect(worker.worker.recordAttempts.failures(of: counted) == 0)
        }
        await client.close()
    }

    // MARK: 5. Numeric URL options still trap (issue 12 item 3)

    /// `heartbeat=inf`, `channel_max=1e30`, `frame_max=1e30` trap in `Int(Double)`; `heartbeat` or `frame_max`
    /// beyond Int32 trap later, in `Int32(...)` when connecting. A URL is refused with a clear error instead.
    @Test func numericURLOptionsOutOfRangeAreRefusedNotATrap() async {
        // Exit tests run in a child process, so a trap fails this expectation instead of the whole test run.
        await #expect(processExitsWith: .success, "heartbeat=inf") {
            _ = try? ConnectionConfiguration(url: "amqp://localhost/?heartbeat=inf")
        }
        await #expect(processExitsWith: .success, "channel_max=1e30") {
            _ = try? ConnectionConfiguration(url: "amqp://localhost/?channel_max=1e30")
        }
        await #expect(processExitsWith: .success, "frame_max=1e30") {
            _ = try? ConnectionConfiguration(url: "amqp://localhost/?frame_max=1e30")
        }
    }

    @Test func numericURLOptionsThatOnlyTrapWhenConnectingAreRefused() async {
        await #expect(processExitsWith: .success) {
            let port = ProcessInfo.processInfo.environment["AMQP_BROKER_PORT"] ?? "5672"
            let connection = try? await Connection.open(
                url: "amqp://guest:guest@127.0.0.1:\(port)/%2f?heartbeat=3000000000")
            await connection?.close()
        }
        // `timeval(seconds:)` converts with Int(Double).
        await #expect(processExitsWith: .success, "connection_timeout=inf") {
            let port = ProcessInfo.processInfo.environment["AMQP_BROKER_PORT"] ?? "5672"
            let connection = try? await Connection.open(
                url: "amqp://guest:guest@127.0.0.1:\(port)/%2f?connection_timeout=inf")
            await connection?.close()
        }
    }

    // MARK: 6. demo.sleep traps on a large number (a one-message crash of any --demo-tasks worker)

    /// `demo.sleep` turns its argument into `Duration.seconds`, which traps beyond about 1.7e20 s: one message
    /// `demo.sleep(1e30)` kills a worker started with `--demo-tasks` (the README's quick start), and its redelivery
    /// the next one.
    @Test func demoSleepWithAHugeNumberDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            var registry = TaskRegistry()
            try DemoTasks.register(in: &registry)
            guard let handler = registry.handler(for: "demo.sleep") else { return }
            let context = TaskContext(
                message: TaskMessage(name: "demo.sleep", args: [.double(1e30)]), redelivered: false, hostname: "review",
                queue: "review")
            let run = Task { try await handler.run(context) }
            run.cancel()
            _ = await run.result
        }
    }

    // MARK: 7. WorkerControl.sleep ignores cancellation

    /// The consumer restart pause and the heartbeat loop sleep in `WorkerControl.sleep`, which only a stop wakes.
    /// When the connection is lost, `serve`'s task group cancels its other children and waits for them, so a
    /// consumer in its restart pause (up to `maxReconnectDelay`, 30 s; the restart count never resets, so after a
    /// few restarts every pause is 15-30 s) holds the reconnect back for the rest of its pause.
    @Test func aCancelledWorkerControlSleepEndsAtOnce() async {
        let control = WorkerControl()
        let sleeper = Task { try? await control.sleep(seconds: 3600) }
        sleeper.cancel()
        let endedByCancellation = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await sleeper.value
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))  // safety net only
                return false
            }
            let first = await group.next() ?? false
            // Unblock the sleeper either way, so the group can end.
            await control.stop()
            group.cancelAll()
            return first
        }
        #expect(endedByCancellation, "a cancelled sleep went on until something stopped the worker")
    }

    // MARK: 8. What the fixes added is not documented

    /// Item 8 asks for limits that are "configurable, documented"; the README's `[worker]` row and its list of
    /// dead-letter reasons predate the fixes.
    @Test func theReadmeDocumentsTheNewLimitsReasonsAndFailures() throws {
        let readme = try String(contentsOf: Broker.repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        for key in ["max_message_size", "max_result_size", "record_attempts"] {
            #expect(readme.contains("`\(key)`"), "[worker] \(key) is not in the README")
        }
        for reason in ["invalid-header", "malformed-headers", "message-too-large", "outcome-not-recorded"] {
            #expect(readme.contains(reason), "dead-letter reason \(reason) is not in the README")
        }
        for failure in ["MessageTooLarge", "ResultTooLarge", "OutcomeNotRecorded"] {
            #expect(readme.contains(failure), "FAILURE type \(failure) is not in the README")
        }
        // "What we guarantee" says a task runs twice for "exactly two causes" (a redelivery, a client's repeated
        // publish); a task whose outcome cannot be recorded now also runs up to record_attempts times per worker
        // (its SUCCESS published each time), then lands in <queue>.dead although it ran.
        let guarantees = readme.components(separatedBy: "### What we guarantee").dropFirst().first?
            .components(separatedBy: "\n## ").first ?? ""
        #expect(guarantees.contains("record_attempts"), "What we guarantee does not count the re-runs of record_attempts")
    }

    // MARK: Helpers

    /// Publishes one message, confirmed, on a connection of its own made with `url`.
    static func publish(_ body: Data, to queue: String, properties: BasicProperties, as url: String) async throws {
        let connection = try await Connection.open(url: url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        try await channel.publish(body, routingKey: queue, properties: properties)
        await connection.close()
    }

    /// The JSON body of the first result for `taskId` in `queue` (taken off it), polled with a safety deadline.
    static func waitForResult(
        of taskId: String, in queue: String, on connection: Connection, seconds: Double, otherwise: String
    ) async throws -> JSONValue {
        let channel = try await connection.openChannel()
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let message = try await channel.get(queue: queue, autoAck: true),
                message.properties.correlationId == taskId
            {
                return try JSONValue.parse(message.body)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure(otherwise)
    }

    /// Runs `body`, then always stops the worker and deletes `queues` (a looping message must not outlive its test).
    static func cleaningUp(
        worker: RunningWorker, queues: [String], on connection: Connection, _ body: () async throws -> Void
    ) async throws {
        var failure: Error?
        do { try await body() } catch { failure = error }
        try? await worker.stop()
        let channel = try await connection.openChannel()
        for queue in queues { _ = try? await channel.deleteQueue(queue) }
        _ = try? await channel.deleteExchange(DeadLetters.name(for: queues[0]))
        await connection.close()
        if let failure { throw failure }
    }
}

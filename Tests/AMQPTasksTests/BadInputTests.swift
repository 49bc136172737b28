import AMQP
@testable import AMQPTasks
import Foundation
import Synchronization
import Testing

/// Single messages that used to crash, stall or loop a worker (issue "one message must never stop a worker"): each
/// is refused with its reason, given up on after a bounded number of attempts, or answered, and the worker goes on.
@Suite struct BadInputTests {
    // MARK: Headers a worker relies on (pure)

    static func decode(_ headers: FieldTable) throws -> TaskMessage {
        var table: FieldTable = ["task": "demo.add", "id": "bad-header-1"]
        for (key, value) in headers.entries { table[key] = value }
        return try TaskMessage.decode(
            properties: BasicProperties(contentType: "application/json", headers: table), body: Data("[[], {}, {}]".utf8))
    }

    static func refusal(_ headers: FieldTable) -> TaskMessageError.Reason? {
        do {
            _ = try decode(headers)
            return nil
        } catch let error as TaskMessageError {
            return error.reason
        } catch {
            return nil
        }
    }

    @Test func nonASCIIDigitsInTimesAreRefusedNotACrash() {
        // Arabic-Indic digits: `\d` matched them and `Int32(...)!` trapped.
        let arabic = "٢٠٢٦-١١-٢٥T15:22:28+00:00"
        #expect(CeleryTime.parse(arabic) == nil)
        #expect(CeleryTime.parse("2026-11-25T15:22:28+0٠:00") == nil)
        #expect(Self.refusal(["eta": .string(arabic)]) == .invalidHeader)
        #expect(Self.refusal(["expires": .string(arabic)]) == .invalidHeader)
        #expect(Self.refusal(["eta": "tomorrow"]) == .invalidHeader)
        #expect(Self.refusal(["eta": .int32(5)]) == .invalidHeader)
        #expect(Self.refusal(["eta": "2026-13-45T99:99:99"]) == .invalidHeader)
        #expect(Self.refusal(["eta": .void]) == nil)
        #expect(Self.refusal(["eta": "2026-11-25T15:22:28.144239+00:00"]) == nil)
    }

    @Test func timeLimitsThatCannotBeADurationAreRefusedOrIgnored() throws {
        // 1e30 (as Celery encodes large floats) trapped in Duration.seconds: now it means "no limit".
        #expect(try Self.decode(["timelimit": [.double(1e30), .void]]).timeLimit.hard == nil)
        #expect(try Self.decode(["timelimit": [.double(30), .double(20)]]).timeLimit == .init(hard: .seconds(30), soft: .seconds(20)))
        #expect(Self.refusal(["timelimit": [.double(.infinity), .void]]) == .invalidHeader)
        #expect(Self.refusal(["timelimit": [.double(.nan), .void]]) == .invalidHeader)
        #expect(Self.refusal(["timelimit": [.double(-1), .void]]) == .invalidHeader)
        #expect(Self.refusal(["timelimit": "30"]) == .invalidHeader)
        #expect(Duration.clampedSeconds(1e300) > .seconds(1_000_000))
        #expect(Duration.clampedSeconds(.nan) == .zero)
        #expect(Duration.clampedSeconds(-.infinity) == .zero)
    }

    @Test func retriesOutOfRangeAreRefused() {
        #expect(Self.refusal(["retries": .int32(-1)]) == .invalidHeader)
        #expect(Self.refusal(["retries": .int64(1 << 40)]) == .invalidHeader)
        #expect(Self.refusal(["retries": .uint64(.max)]) == .invalidHeader)
        #expect(Self.refusal(["retries": "3"]) == .invalidHeader)
        #expect(Self.refusal(["retries": .int32(3)]) == nil)
    }

    @Test func taskIdsTooLongToAnswerAreRefused() {
        #expect(Self.refusal(["id": .string(String(repeating: "x", count: 300))]) == .invalidHeader)
        #expect(Self.refusal(["id": .string(String(repeating: "é", count: 128))]) == .invalidHeader, "bytes, not characters")
        #expect(Self.refusal(["id": .string(String(repeating: "x", count: 255))]) == nil)
    }

    static func contentRefusal(_ properties: BasicProperties, _ body: String = "[[], {}, {}]") -> TaskMessageError? {
        do {
            _ = try TaskMessage.decode(properties: properties, body: Data(body.utf8))
            return nil
        } catch {
            return error as? TaskMessageError
        }
    }

    @Test func contentTypesEncodingsAndCompressionAreCheckedAsCeleryDoes() {
        let headers: FieldTable = ["task": "demo.add", "id": "content-1"]
        #expect(Self.contentRefusal(BasicProperties(contentType: "application/json; charset=utf-8", headers: headers)) == nil)
        #expect(Self.contentRefusal(BasicProperties(contentType: "Application/JSON", headers: headers)) == nil)
        #expect(
            Self.contentRefusal(BasicProperties(contentType: "application/json; charset=latin-1", headers: headers))?.reason
                == .unsupportedContentType)
        #expect(
            Self.contentRefusal(BasicProperties(contentType: "application/json", contentEncoding: "latin-1", headers: headers))?
                .reason == .unsupportedContentType)
        #expect(
            Self.contentRefusal(BasicProperties(contentType: "application/json", contentEncoding: "binary", headers: headers))?
                .reason == .unsupportedContentType)
        var compressed = headers
        compressed["compression"] = "application/x-gzip"
        let refusal = Self.contentRefusal(BasicProperties(contentType: "application/json", headers: compressed))
        #expect(refusal?.reason == .unsupportedContentType)
        #expect(refusal?.message.contains("task_compression") == true)
    }

    @Test func protocolOneAndNonStringNamesSayWhatIsWrong() {
        let v1 = Self.contentRefusal(
            BasicProperties(contentType: "application/json"),
            #"{"task": "demo.add", "id": "v1-1", "args": [1, 2], "kwargs": {}}"#)
        #expect(v1?.reason == .notATaskMessage)
        #expect(v1?.message.contains("protocol 1") == true)
        let numericTask = Self.contentRefusal(BasicProperties(contentType: "application/json", headers: ["task": 5, "id": "n-1"]))
        #expect(numericTask?.reason == .notATaskMessage)
        #expect(numericTask?.message.contains("must be a string") == true)
        let numericId = Self.contentRefusal(BasicProperties(contentType: "application/json", headers: ["task": "demo.add", "id": 7]))
        #expect(numericId?.reason == .notATaskMessage)
    }

    @Test func farETAsAndCountdownsWaitInTheDelayLevelsRoundedUpAndBounded() {
        #expect(NativeDelayedDelivery.delaySeconds(for: .milliseconds(200)) == 1)
        #expect(NativeDelayedDelivery.delaySeconds(for: .milliseconds(1900)) == 2, "rounded up, never early")
        #expect(NativeDelayedDelivery.delaySeconds(for: .seconds(3)) == 3)
        #expect(NativeDelayedDelivery.delaySeconds(for: .seconds(1000)) == 1000)
        #expect(
            NativeDelayedDelivery.delaySeconds(for: .seconds(30 * 365 * 86_400))
                == NativeDelayedDelivery.longestDelaySeconds, "30 years: the longest delay, then again")
        #expect(NativeDelayedDelivery.delaySeconds(for: .seconds(Int64.max)) == NativeDelayedDelivery.longestDelaySeconds)
        #expect(NativeDelayedDelivery.delaySeconds(for: .seconds(-5)) == 1, "a delay already past waits the shortest")
        #expect(NativeDelayedDelivery.longestDelaySeconds == 268_435_455)
        #expect(CeleryTime.format(Date(timeIntervalSince1970: 1e300)).hasPrefix("9999-12-31"))
    }

    @Test(arguments: ["grace_period = inf", "grace_period = nan", "grace_period = 1e30"])
    func secondsInTheConfigurationThatCannotBeADurationAreErrors(_ line: String) throws {
        do {
            _ = try TasksConfiguration.parse("[worker]\n\(line)\n", file: "t.toml", environment: [:])
            Issue.record("\(line) was accepted")
        } catch let errors as ConfigErrors {
            #expect(errors.description.contains("t.toml:2: worker.grace_period: expected a finite number"), "\(errors)")
        }
        for task in ["time_limit = inf", "soft_time_limit = 1e300", "retry_backoff = nan"] {
            #expect(throws: ConfigErrors.self) {
                _ = try TasksConfiguration.parse("[tasks.\"t\"]\n\(task)\n", file: "t.toml", environment: [:])
            }
        }
    }

    @Test func recordAttemptsStayBounded() {
        let attempts = RecordAttempts(capacity: 100)
        for n in 0..<1000 { _ = attempts.failed("task-\(n)") }
        #expect(attempts.count == 100)
        #expect(attempts.failed("task-999") == 2, "recent ones are kept")
        for n in 0..<1000 { attempts.recorded("task-\(n)") }
        #expect(attempts.count == 0)
    }

    // MARK: Against the broker

    @Test func aPublishWithAnOverlongNameFailsAloneAndTheConnectionGoesOn() async throws {
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let queue = uniqueQueue("shortstr")
        try await channel.declareQueue(queue, durable: false)
        await #expect(throws: AMQPError.self) {
            try await channel.publish(Data("x".utf8), routingKey: String(repeating: "q", count: 300))
        }
        await #expect(throws: AMQPError.self) {
            try await channel.publish(
                Data("x".utf8), routingKey: queue,
                properties: BasicProperties(correlationId: String(repeating: "c", count: 256)))
        }
        do {
            try await channel.publish(
                Data("x".utf8), routingKey: queue, properties: BasicProperties(headers: [String(repeating: "k", count: 256): 1]))
            Issue.record("a header name over 255 bytes was sent")
        } catch let error as AMQPError {
            #expect(error.kind == .invalidArgument)
            #expect(error.description.contains("at most 255"))
        }
        // The same channel and connection still work.
        try await channel.publish(Data("ok".utf8), routingKey: queue, mandatory: true)
        #expect(try await channel.inspectQueue(queue).messageCount == 1)
        #expect(connection.isOpen)
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    @Test func aLateSettleOfAClosedChannelsDeliveryNeverHitsTheChannelThatReusesItsNumber() async throws {
        let connection = try await Connection.open(url: Broker.url)
        let setup = try await connection.openChannel()
        let queue = uniqueQueue("reused")
        try await setup.declareQueue(queue, durable: false)
        try await setup.confirmSelect()
        for n in 0..<2 { try await setup.publish(Data("\(n)".utf8), routingKey: queue) }
        let first = try await connection.openChannel()
        let old = try #require(try await first.get(queue: queue))
        try await first.close()
        // The next channel gets the freed number.
        let second = try await connection.openChannel()
        #expect(second.id == first.id)
        let fresh = try #require(try await second.get(queue: queue))
        do {
            try await old.nack(requeue: true)
            Issue.record("a delivery of a closed channel was settled on its successor")
        } catch let error as AMQPError {
            #expect(error.kind == .closed)
        }
        old.sendAck()
        try await fresh.ack()
        // The successor is still open: an ack for an unknown tag would have closed it with 406.
        #expect(try await second.inspectQueue(queue).messageCount == 1, "the first message was requeued by the close")
        try await setup.deleteQueue(queue)
        await connection.close()
    }

    @Test func anOutcomeThatCannotBeRecordedIsGivenUpAfterTheSetAttempts() async throws {
        let queue = uniqueQueue("unrecorded")
        let runs = RunLog()
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("record.me") { context in
                await runs.record(context.taskId)
                return "done"
            }
        }
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        // A reply queue that refuses every message: the broker nacks the worker's result publish.
        let replies = uniqueQueue("full-replies")
        try await channel.declareQueue(
            replies, durable: false, arguments: ["x-max-length": 0, "x-overflow": "reject-publish"])
        try await channel.confirmSelect()
        var message = TaskMessage(name: "record.me")
        message.replyTo = replies
        let (properties, body) = message.encode()
        try await channel.publish(body, routingKey: queue, properties: properties)

        let dead = try await Self.waitForDeadLetter(in: queue, on: channel)
        #expect(dead.properties.headers?[DeadLetters.Header.reason] == "outcome-not-recorded")
        #expect(dead.properties.headers?[DeadLetters.Header.error]?.stringValue?.contains("basic.nack") == true)
        #expect(dead.properties.correlationId == message.id)
        #expect(
            await runs.count(message.id) == WorkerConfiguration.defaultRecordAttempts,
            "run once per attempt, then given up: no loop")
        #expect(try await channel.inspectQueue(queue).messageCount == 0)
        try await worker.stop()
        try await channel.deleteQueue(queue)
        try await channel.deleteQueue(replies)
        await connection.close()
    }

    /// Runs a task linked to a callback for `linkQueue` on a worker of its own; returns the dead letter it ends as,
    /// how many times it ran, and checks that the worker still answers a normal task afterwards.
    static func runLinked(to linkQueue: String, prefix: String) async throws -> (dead: Delivery, runs: Int, result: ResultMessage) {
        let queue = uniqueQueue(prefix)
        let runs = RunLog()
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("linked") { context in
                await runs.record(context.taskId)
                return 1
            }
        }
        let client = try await TaskClient.connect(url: Broker.url)
        var options = SendOptions(queue: queue)
        options.link = [TaskSignature("demo.add", args: [1], options: ["queue": .string(linkQueue)])]
        let id = try await client.send("linked", options: options)
        let result = try await client.result(for: id, timeout: .seconds(20))
        let dead = try await waitForDeadLetter(in: queue, on: try await client.openChannel())
        // The worker goes on.
        try await expectAnswers(queue, client: client)
        try await worker.stop()
        await client.close()
        return (dead, await runs.count(id), result)
    }

    @Test func aLinkToAMissingQueueIsGivenUpNotLooped() async throws {
        let (dead, runs, result) = try await Self.runLinked(to: "no.such.queue.\(UUID().uuidString)", prefix: "badlink")
        #expect(result.status == .success)
        #expect(dead.properties.headers?[DeadLetters.Header.reason] == "outcome-not-recorded")
        #expect(dead.properties.headers?[DeadLetters.Header.error]?.stringValue?.contains("no.such.queue") == true)
        #expect(runs == WorkerConfiguration.defaultRecordAttempts)
    }

    @Test func anOverlongLinkQueueNameIsGivenUpAtOnce() async throws {
        let (dead, runs, _) = try await Self.runLinked(to: String(repeating: "q", count: 300), prefix: "longlink")
        #expect(dead.properties.headers?[DeadLetters.Header.error]?.stringValue?.contains("at most 255") == true)
        #expect(runs == 1, "an error that cannot go away is not tried again")
    }

    @Test func messagesAndResultsOverTheLimitsAreRefusedWithTheirReason() async throws {
        let queue = uniqueQueue("sizes")
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("big.result") { _ in .string(String(repeating: "r", count: 5000)) }
            },
            configure: {
                $0.maxMessageSize = 4096
                $0.maxResultSize = 2048
            })
        let client = try await TaskClient.connect(url: Broker.url)
        let big = try await client.send("demo.add", args: [.string(String(repeating: "a", count: 5000)), .string("b")], options: SendOptions(queue: queue))
        let refused = try await client.result(for: big, timeout: .seconds(20))
        #expect(refused.status == .failure)
        #expect(refused.failure?.type == "MessageTooLarge")
        let channel = try await client.openChannel()
        let dead = try await Self.waitForDeadLetter(in: queue, on: channel)
        #expect(dead.properties.headers?[DeadLetters.Header.reason] == "message-too-large")
        #expect(dead.body.count > 5000, "the body is kept whole in the dead letter")

        let bigResult = try await client.result(for: try await client.send("big.result", options: SendOptions(queue: queue)), timeout: .seconds(20))
        #expect(bigResult.status == .failure)
        #expect(bigResult.failure?.type == "ResultTooLarge")
        #expect(bigResult.failure?.message.contains("2048") == true)
        try await worker.stop()
        await client.close()
    }

    @Test func aHandlerThatIgnoresCancellationCannotHoldItsSlot() async throws {
        let queue = uniqueQueue("stubborn")
        let worker = try await RunningWorker.start(queues: [queue], grace: 0.5) { registry in
            try registry.register("stubborn") { _ in
                // Never returns and ignores cancellation.
                await withCheckedContinuation { Stuck.keep($0) }
                return "unreachable"
            }
        }
        let client = try await TaskClient.connect(url: Broker.url)
        var limited = SendOptions(queue: queue)
        limited.timeLimit = .init(hard: .seconds(1))
        let timedOut = try await client.result(for: try await client.send("stubborn", options: limited), timeout: .seconds(20))
        #expect(timedOut.status == .failure)
        #expect(timedOut.failure?.type == "TimeLimitExceeded")
        // The only consumer is free again.
        try await Self.expectAnswers(queue, client: client)

        // Shutdown past the grace period: the stubborn task is requeued, never acked, and the worker stops.
        let running = try await client.send("stubborn", options: SendOptions(queue: queue))
        let channel = try await client.openChannel()
        try await Self.waitUntil("the stubborn task is taken") {
            try await channel.inspectQueue(queue).messageCount == 0
        }
        try await worker.stop()
        try await Self.waitUntil("the stubborn task is back in its queue") {
            try await channel.inspectQueue(queue).messageCount == 1
        }
        let back = try #require(try await channel.get(queue: queue, autoAck: true))
        #expect(back.properties.correlationId == running)
        await client.close()
    }

    @Test func aConsumerWhoseQueueIsDeletedComesBack() async throws {
        let queue = uniqueQueue("deleted")
        let worker = try await RunningWorker.start(queues: [queue], concurrency: 2)
        let client = try await TaskClient.connect(url: Broker.url)
        let channel = try await client.openChannel()
        try await channel.deleteQueue(queue)
        // The broker cancels both consumers; each declares the queue again and consumes.
        try await Self.expectServing(queue, consumers: 2, client: client)
        try await worker.stop()
        await client.close()
    }

    @Test func aConsumerWhoseChannelTheBrokerClosesComesBack() async throws {
        let queue = uniqueQueue("closed")
        let worker = try await RunningWorker.start(queues: [queue], concurrency: 2)
        let client = try await TaskClient.connect(url: Broker.url)
        let channel = try await client.openChannel()
        // Someone redeclares the dead-letter exchange with another type: the worker's declare before its dead letter
        // gets 406, and the broker closes that consumer's channel.
        let dead = DeadLetters.name(for: queue)
        try await channel.deleteExchange(dead)
        try await channel.declareExchange(dead, type: .direct, durable: true)
        try await channel.confirmSelect()
        try await channel.publish(
            Data("not json".utf8), routingKey: queue,
            properties: BasicProperties(contentType: "application/json", headers: ["task": "demo.add", "id": "closes-1"]))
        try await Self.waitUntil("the worker failed to dead-letter it (406, channel closed)") {
            worker.worker.recordAttempts.failures(of: "closes-1") >= 1
        }
        // The 406 cannot go away by itself; once the exchange is right again, the message reaches the dead letters.
        try await channel.deleteExchange(dead)
        let message = try await Self.waitForDeadLetter(in: queue, on: channel)
        let reason = message.properties.headers?[DeadLetters.Header.reason]?.stringValue
        #expect(reason == "invalid-json" || reason == "outcome-not-recorded", "\(reason ?? "none")")
        try await Self.expectServing(queue, consumers: 2, client: client)
        try await worker.stop()
        await client.close()
    }

    @Test func aDelayedTaskItsQueueRefusesWaitsInTheDelayQueueInsteadOfBeingDropped() async throws {
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let queue = uniqueQueue("full")
        // A task queue that is full and refuses more (x-overflow = reject-publish).
        try await channel.declareQueue(queue, durable: true, arguments: ["x-max-length": 1, "x-overflow": "reject-publish"])
        try await DelayedDeliverySetup.prepare(queues: [queue], configuration: nil, on: connection)
        try await channel.publish(Data("filler".utf8), routingKey: queue)
        try await NativeDelayedDelivery.publish(
            OutgoingMessage(body: Data("delayed".utf8), routingKey: queue, properties: BasicProperties(deliveryMode: 2)),
            toQueue: queue, after: .seconds(1), on: channel)
        // Let its second pass and the queue refuse it (a classic delay level would drop it now, at most once).
        try await Task.sleep(for: .seconds(2.5))
        let filler = try #require(try await channel.get(queue: queue, autoAck: true))
        #expect(filler.body == Data("filler".utf8))
        // At least once: the delay queue tries again, and the task arrives.
        var arrived: Delivery?
        try await Self.waitUntil("the refused task arrives once there is room") {
            arrived = try await channel.get(queue: queue, autoAck: true)
            return arrived != nil
        }
        #expect(arrived?.body == Data("delayed".utf8))
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    // MARK: Helpers

    /// A normal task sent to `queue` now is answered.
    static func expectAnswers(_ queue: String, client: TaskClient) async throws {
        let id = try await client.send("demo.add", args: [2, 3], options: SendOptions(queue: queue))
        #expect(try await client.value(for: id, timeout: .seconds(20)) == 5)
    }

    /// `queue` has its `consumers` again (waited for) and they answer a normal task.
    static func expectServing(_ queue: String, consumers: UInt32, client: TaskClient) async throws {
        try await waitUntil("\(consumers) consumers of \(queue) are back") {
            let probe = try await client.openChannel()
            defer { Task { try? await probe.close() } }
            return (try? await probe.inspectQueue(queue))?.consumerCount == consumers
        }
        try await expectAnswers(queue, client: client)
    }

    /// Waits (polling, with a generous safety deadline) until `condition` holds.
    static func waitUntil(_ what: String, seconds: Double = 60, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while try await !condition() {
            guard Date() < deadline else { throw TestFailure("timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The first message to arrive in `<queue>.dead`, taken off it.
    static func waitForDeadLetter(in queue: String, on channel: Channel, seconds: Double = 60) async throws -> Delivery {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let probe = try await channel.connection.openChannel()
            let message = try? await probe.get(queue: DeadLetters.name(for: queue), autoAck: true)
            try? await probe.close()
            if let message { return message }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("nothing arrived in \(DeadLetters.name(for: queue))")
    }
}

/// Keeps the continuations of handlers that must never return, so they are never freed unresumed.
enum Stuck {
    private static let held = Mutex<[CheckedContinuation<Void, Never>]>([])
    static func keep(_ continuation: CheckedContinuation<Void, Never>) { held.withLock { $0.append(continuation) } }
}

import AMQP
@testable import AMQPTasks
import Foundation
import Logging
import Testing

/// Celery's commands that reshape a worker (`pool_grow`, `pool_shrink`, `add_consumer`, `cancel_consumer`,
/// `autoscale`) against the local broker: the consumer slots they add and retire, counted by the broker and by
/// `Worker.status`; a retiring busy slot that finishes its task; autoscale growing under a backlog and shrinking when
/// idle; and the configuration keys. Waits for events (gates, consumer counts), never for time.
@Suite(.serialized) struct PoolControlTests {
    @Test func poolGrowAddsSlotsAndPoolShrinkRetiresABusyOneOnlyAfterItsTask() async throws {
        let gate = Gate()
        let runs = RunLog()
        let worker = try await PidboxWorker.start(access: .full, gate: gate, runs: runs)
        let requester = try await PidboxRequester.open()
        let client = try await TaskClient.connect(url: Broker.url)
        #expect(try await requester.ask(worker.hostname, "pool_grow", ["n": 2]) == ["ok": "pool will grow"])
        try await Self.waitForConsumers(3, on: worker.queue, requester: requester)
        #expect(worker.worker.status.consumers[worker.queue] == 3)

        // Three tasks held at the gate: every slot is busy. Shrinking by 2 retires two busy slots.
        var ids: [String] = []
        for _ in 0..<3 { ids.append(try await client.send("gate.wait", options: SendOptions(queue: worker.queue))) }
        try await gate.waitForWaiters(3)
        #expect(try await requester.ask(worker.hostname, "pool_shrink", ["n": 2]) == ["ok": "pool will shrink"])
        #expect(worker.worker.slots.shape.concurrency == 1)
        #expect(worker.worker.status.consumers[worker.queue] == 3, "retiring slots count until their tasks ended")
        await gate.open()
        for id in ids {
            #expect(try await client.result(for: id, timeout: .seconds(30)).result == "released")
            #expect(await runs.count(id) == 1, "a retiring slot's task runs once, never requeued")
        }
        // The retired slots end (a retired slot that took tasks again would stay among the running ones).
        try await BadInputTests.waitUntil("the retired slots to end") {
            worker.worker.slots.runningCounts == [worker.queue: 1]
        }
        try await Self.waitForConsumers(1, on: worker.queue, requester: requester)
        #expect(worker.worker.status.consumers[worker.queue] == 1)
        #expect(try await requester.ask(worker.hostname, "pool_shrink")["error"] != nil, "at least one slot stays")
        await client.close()
        try await requester.close()
        try await worker.stop()
    }

    @Test func addConsumerAndCancelConsumerChangeTheQueuesAndAMissingQueueChangesNothing() async throws {
        let worker = try await PidboxWorker.start(access: .full)
        let requester = try await PidboxRequester.open()
        let client = try await TaskClient.connect(url: Broker.url)
        let extra = uniqueQueue("added")
        let missing = try await requester.ask(worker.hostname, "add_consumer", ["queue": .string(extra)])
        #expect(missing["error"]?.stringValue?.contains("does not exist") == true, "\(missing)")
        #expect(worker.worker.status.queues == [worker.queue])

        // With an exchange, declared as Celery does (the exchange named, the routing key the queue's name).
        let exchange = "\(extra).exchange"
        #expect(
            try await requester.ask(
                worker.hostname, "add_consumer",
                ["queue": .string(extra), "exchange": .string(exchange), "exchange_type": "direct"])
                == ["ok": .string("add consumer \(extra)")])
        try await Self.waitForConsumers(1, on: extra, requester: requester)
        var routed = SendOptions()
        routed.exchange = exchange
        routed.routingKey = extra
        let id = try await client.send("demo.add", args: [2, 5], options: routed)
        #expect(try await client.result(for: id, timeout: .seconds(30)).result == 7)
        #expect(worker.worker.status.queues == [worker.queue, extra])

        #expect(
            try await requester.ask(worker.hostname, "cancel_consumer", ["queue": .string(extra)])
                == ["ok": .string("no longer consuming from \(extra)")])
        try await Self.waitForConsumers(0, on: extra, requester: requester)
        #expect(worker.worker.status.queues == [worker.queue])
        #expect(worker.worker.status.isHealthy, "a cancelled queue is not one the worker should consume")
        let cancelledLast = try await requester.ask(worker.hostname, "cancel_consumer", ["queue": .string(worker.queue)])
        #expect(cancelledLast["error"]?.stringValue?.contains("the only queue") == true)
        await client.close()
        try await requester.close()
        try await worker.stop()
        let cleanup = try await Connection.open(url: Broker.url)
        let channel = try await cleanup.openChannel()
        _ = try? await channel.deleteQueue(extra)
        _ = try? await channel.deleteQueue(DeadLetters.name(for: extra))
        try? await channel.deleteExchange(exchange)
        await cleanup.close()
    }

    @Test func autoscaleGrowsUnderABacklogAndShrinksIdleSlotsAfterTheKeepalive() async throws {
        let gate = Gate()
        let worker = try await PidboxWorker.start(access: .full, gate: gate) {
            $0.autoscale = try AutoscaleRange(max: 3, min: 1)
            $0.autoscaleKeepalive = .milliseconds(200)
            $0.autoscaleInterval = .milliseconds(100)
        }
        let requester = try await PidboxRequester.open()
        let client = try await TaskClient.connect(url: Broker.url)
        #expect(worker.worker.status.consumers[worker.queue] == 1)
        // Four tasks at a closed gate: the backlog grows the worker to its maximum, three running at once.
        var ids: [String] = []
        for _ in 0..<4 { ids.append(try await client.send("gate.wait", options: SendOptions(queue: worker.queue))) }
        try await gate.waitForWaiters(3)
        try await Self.waitForConsumers(3, on: worker.queue, requester: requester)
        #expect(worker.worker.slots.shape.concurrency == 3, "never above the maximum")
        let stats = try await requester.ask(worker.hostname, "stats")
        #expect(stats["autoscaler"] == ["max": 3, "min": 1, "current": 3], "\(stats)")
        #expect(try await requester.ask(worker.hostname, "pool_grow")["error"]?.stringValue?.contains("autoscale") == true)
        await gate.open()
        for id in ids { #expect(try await client.result(for: id, timeout: .seconds(30)).result == "released") }
        // Idle: back to the minimum, the retired slots ended.
        try await BadInputTests.waitUntil("the idle slots to retire") {
            worker.worker.slots.runningCounts == [worker.queue: 1]
        }
        try await Self.waitForConsumers(1, on: worker.queue, requester: requester)
        #expect(worker.worker.slots.shape.concurrency == 1)
        #expect(
            try await requester.ask(worker.hostname, "autoscale", ["max": 2, "min": 2])
                == ["ok": "autoscale now max=2 min=2"])
        try await Self.waitForConsumers(2, on: worker.queue, requester: requester)
        await client.close()
        try await requester.close()
        try await worker.stop()
    }

    /// More slots than the connection has channels (`channel_max`): the slots without a channel wait and try again,
    /// logging why; the connection and the slots that have one go on. Before, the first slot refused a channel ended
    /// the connection, and the reconnect started the same slots again: a reconnect loop any `pool_grow` could start.
    /// (`pool_grow` no longer grows past the channels; `autoscale`'s minimum, as its backlog growth, still may.)
    @Test func slotsBeyondTheConnectionsChannelsWaitAndNeverMakeTheWorkerReconnect() async throws {
        let log = CapturedLog()
        let reconnects = { log.messages.filter { $0.contains("reconnecting in") } }
        let slotWaits = { log.messages.filter { $0.contains("channels of this connection") } }
        let worker = try await PidboxWorker.start(access: .full, log: log.handler(containing: " ")) {
            $0.broker = try WorkerConfiguration(url: Broker.url + "?channel_max=12").broker
        }
        let requester = try await PidboxRequester.open()
        let client = try await TaskClient.connect(url: Broker.url)
        #expect(
            try await requester.ask(worker.hostname, "autoscale", ["max": 21, "min": 21])
                == ["ok": "autoscale now max=21 min=21"])
        // A slot refused a channel says so (the fix), or the connection ends (the bug): wait for either.
        try await BadInputTests.waitUntil("a slot refused a channel, or a reconnect") {
            !slotWaits().isEmpty || !reconnects().isEmpty
        }
        #expect(reconnects().isEmpty, "\(reconnects())")
        let id = try await client.send("demo.add", args: [2, 3], options: SendOptions(queue: worker.queue))
        #expect(try await client.result(for: id, timeout: .seconds(30)).result == 5)
        #expect(worker.worker.status.connected)
        #expect(reconnects().isEmpty, "\(reconnects())")
        await client.close()
        try await requester.close()
        try await worker.stop()
    }

    /// `pool_grow` past the connection's channels (`channel_max`) adds the slots that have a channel and refuses the
    /// rest, saying how many were added and why; before, it answered "ok" and the extra slots only waited.
    @Test func poolGrowPastTheConnectionsChannelsAddsWhatFitsAndSaysWhyNotTheRest() async throws {
        let log = CapturedLog()
        let slotWaits = { log.messages.filter { $0.contains("channels of this connection") } }
        let worker = try await PidboxWorker.start(access: .full, log: log.handler(containing: " ")) {
            $0.broker = try WorkerConfiguration(url: Broker.url + "?channel_max=12").broker
        }
        let requester = try await PidboxRequester.open()
        let reply = try await requester.ask(worker.hostname, "pool_grow", ["n": 20])
        let error = reply["error"]?.stringValue ?? ""
        #expect(error.contains("pool_grow 20: added") && error.contains("channel_max"), "\(reply)")
        let concurrency = worker.worker.slots.shape.concurrency
        #expect(concurrency > 1 && concurrency < 21, "some added, not all: \(concurrency)")
        #expect(error.contains("added \(concurrency - 1) consumer slot(s) per queue"), "\(reply)")
        // Every slot it added gets a channel: all consume, and none had to wait for one.
        try await Self.waitForConsumers(concurrency, on: worker.queue, requester: requester)
        #expect(slotWaits().isEmpty, "\(slotWaits())")
        // Full now: a further grow adds nothing and says so.
        let full = try await requester.ask(worker.hostname, "pool_grow")["error"]?.stringValue ?? ""
        #expect(full.contains("added 0 consumer slot(s)"), "\(full)")
        #expect(worker.worker.slots.shape.concurrency == concurrency)
        try await requester.close()
        try await worker.stop()
    }

    /// `add_consumer` refuses the queues amqp-tasks keeps for itself, even when they exist: consuming another
    /// worker's custody queue would run the task that worker runs now; a delay level, tasks before they are due.
    @Test func addConsumerRefusesCustodyAndDelayQueues() async throws {
        let worker = try await PidboxWorker.start(access: .full)
        let requester = try await PidboxRequester.open()
        let custody = "amqp-tasks.custody.other-\(UUID().uuidString.prefix(8))@test.x"
        let setup = try await requester.connection.openChannel()
        try await setup.declareQueue(custody, durable: true, autoDelete: false, arguments: [:])
        for queue in [custody, "celery_delayed_3"] {
            let answer = try await requester.ask(worker.hostname, "add_consumer", ["queue": .string(queue)])
            #expect(answer["error"]?.stringValue?.contains("keeps for itself") == true, "\(queue): \(answer)")
        }
        #expect(worker.worker.slots.shape.queues == [worker.queue])
        _ = try? await setup.deleteQueue(custody)
        try? await setup.close()
        try await requester.close()
        try await worker.stop()
    }

    /// `add_consumer` options AMQP cannot carry (a queue argument named with more than 255 bytes, queue arguments
    /// larger than a frame) get a refusal; the worker's connection, and the tasks running on it, are not touched.
    @Test func addConsumerWithAnOverlongQueueArgumentIsRefusedWithoutTouchingTheConnection() async throws {
        let log = CapturedLog()
        let worker = try await PidboxWorker.start(access: .full, log: log.handler(containing: " "))
        let requester = try await PidboxRequester.open()
        let queue = uniqueQueue("overlong")
        let overlong = String(repeating: "k", count: 300)
        for arguments: JSONValue in [[overlong: .int(1)], ["x-note": [overlong: .int(1)]]] {
            let answer = try await requester.ask(
                worker.hostname, "add_consumer",
                ["queue": .string(queue), "exchange": .string("\(queue).x"), "queue_arguments": arguments])
            #expect(answer["error"]?.stringValue?.contains("at most 255 bytes") == true, "\(answer)")
        }
        // Larger than a frame (frame_max, 128 KiB by default).
        let huge = try await requester.ask(
            worker.hostname, "add_consumer",
            ["queue": .string(queue), "exchange": .string("\(queue).x"),
             "queue_arguments": ["x-note": .string(String(repeating: "n", count: 300_000))]])
        #expect(huge["error"]?.stringValue?.contains("at most 4096 bytes") == true, "\(huge)")
        try await Self.expectConnectionUntouched(worker, requester, log, thenDelete: queue, exchange: "\(queue).x")
    }

    /// After a refused `add_consumer`: the worker still answers, never reconnected and consumes only its own queue;
    /// then the worker stops and what the test may have made on the broker is deleted.
    static func expectConnectionUntouched(
        _ worker: PidboxWorker, _ requester: PidboxRequester, _ log: CapturedLog, thenDelete queue: String,
        exchange: String
    ) async throws {
        #expect(try await requester.ask(worker.hostname, "ping") == ["ok": "pong"])
        #expect(worker.worker.status.connected)
        #expect(log.messages.filter { $0.contains("reconnecting in") }.isEmpty, "\(log.messages.suffix(5))")
        #expect(worker.worker.slots.shape.queues == [worker.queue])
        try await requester.close()
        try await worker.stop()
        let cleanup = try await Connection.open(url: Broker.url)
        let channel = try await cleanup.openChannel()
        _ = try? await channel.deleteQueue(queue)
        try? await channel.deleteExchange(exchange)
        await cleanup.close()
    }

    /// `add_consumer` of a queue whose name leaves no room for its dead-letter queue (`<queue>.dead`, over 255
    /// bytes) gets a refusal; the worker's connection, and the tasks running on it, are not touched.
    @Test func addConsumerOfAQueueTooLongForItsDeadLetterQueueIsRefusedWithoutTouchingTheConnection() async throws {
        let log = CapturedLog()
        let worker = try await PidboxWorker.start(access: .full, log: log.handler(containing: " "))
        let requester = try await PidboxRequester.open()
        let prefix = uniqueQueue("long")
        let queue = prefix + String(repeating: "q", count: 255 - prefix.utf8.count)
        let answer = try await requester.ask(
            worker.hostname, "add_consumer", ["queue": .string(queue), "exchange": .string("\(prefix).x")])
        #expect(answer["error"]?.stringValue?.contains("dead") == true, "\(answer)")
        try await Self.expectConnectionUntouched(worker, requester, log, thenDelete: queue, exchange: "\(prefix).x")
    }

    /// A resize never leaves the autoscale range set now, whatever target it is given: the autoscaler sizes from
    /// the range it read before probing the queues, which an `autoscale` command may have narrowed meanwhile.
    @Test func aResizeStaysWithinTheAutoscaleRangeSetNow() async throws {
        var configuration = WorkerConfiguration()
        configuration.queues = ["q"]
        configuration.autoscale = try AutoscaleRange(max: 8, min: 1)
        let slots = ConsumerSlots(configuration: configuration)
        #expect(await slots.resize(to: 6) == 6)
        slots.setAutoscale(try AutoscaleRange(max: 2, min: 1))
        // What a stale autoscaler asks for after the range was narrowed to 2.
        #expect(await slots.resize(to: 6) == 2)
        #expect(slots.shape.concurrency == 2)
        slots.setAutoscale(try AutoscaleRange(max: 4, min: 3))
        #expect(await slots.resize(to: 1) == 3)
    }

    @Test func theConfigurationFileSetsAutoscaleAndMaxConcurrency() throws {
        let file = try TasksConfiguration.parse(
            "[worker]\nmax_concurrency = 8\nautoscale = \"6,2\"\nautoscale_keepalive = 5\n", file: "t.toml",
            environment: [:])
        #expect(file.worker.maxConcurrency == 8)
        #expect(file.worker.autoscale == (try AutoscaleRange(max: 6, min: 2)))
        #expect(file.worker.autoscaleKeepalive == .seconds(5))
        #expect(ConsumerSlots(configuration: file.worker).shape.concurrency == 2, "autoscale starts at its minimum")
        #expect(WorkerConfiguration().autoscale == nil && WorkerConfiguration().maxConcurrency == 64)
        for (text, expected) in [
            ("autoscale = \"6,9\"", "below the minimum"), ("autoscale = \"x\"", "MAX,MIN"),
            ("autoscale = \"4,0\"", "at least 1"), ("autoscale = \"100,1\"", "above max_concurrency"),
            ("max_concurrency = 0", "1 to 1000"),
        ] {
            let errors = #expect(throws: ConfigErrors.self) {
                try TasksConfiguration.parse("[worker]\n\(text)\n", file: "t.toml", environment: [:])
            }
            #expect(errors?.description.contains(expected) == true, "\(text): \(errors?.description ?? "")")
        }
        #expect(try AutoscaleRange(parsing: "10") == AutoscaleRange(max: 10, min: 1))
    }

    /// Waits until the broker counts `count` consumers on `queue`.
    static func waitForConsumers(_ count: Int, on queue: String, requester: PidboxRequester) async throws {
        try await BadInputTests.waitUntil("\(count) consumers on \(queue)") {
            let probe = try await requester.connection.openChannel()
            let consumers = (try? await probe.inspectQueue(queue))?.consumerCount
            try? await probe.close()
            return consumers.map(Int.init) == count
        }
    }
}

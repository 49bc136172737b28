import AMQP
@testable import AMQPTasks
import Foundation
import Logging
import Testing

/// Delayed tasks through kombu's native delayed delivery levels (`NativeDelayedDelivery`): the routing keys and
/// bindings (pure), and countdowns, retries and ETAs end to end against the local broker.
@Suite struct DelayedDeliveryTests {
    /// When each task's handler started, with the eta its message carried.
    actor Starts {
        private(set) var starts: [String: [(start: Date, eta: Date?)]] = [:]
        func record(_ id: String, eta: Date?) { starts[id, default: []].append((Date(), eta)) }
        func count(_ id: String) -> Int { starts[id]?.count ?? 0 }
        /// Runs that started before the eta their message carried.
        var early: [String] {
            starts.flatMap { id, runs in runs.compactMap { run in run.eta.map { run.start < $0 } == true ? id : nil } }
        }
    }

    /// The code of the `TaskClientError` `body` throws (nil: none).
    static func code(_ body: () async throws -> Void) async -> TaskClientError.Code? {
        do {
            try await body()
            return nil
        } catch {
            return (error as? TaskClientError)?.code
        }
    }

    // MARK: Pure

    @Test func routingKeysAreKombusTwentyEightDigitsThenTheKeyWithAnOldPrefixReplaced() {
        let five = NativeDelayedDelivery.routingKey(delaySeconds: 5, key: "reports.daily")
        // kombu: '.'.join(f'{5:028b}') + '.reports.daily'
        #expect(five == String(repeating: "0.", count: 25) + "1.0.1.reports.daily")
        #expect(NativeDelayedDelivery.routingKey(delaySeconds: 2, key: five).hasSuffix("1.0.reports.daily"))
        #expect(NativeDelayedDelivery.routingKey(delaySeconds: 2, key: five).count == five.count)
        #expect(NativeDelayedDelivery.strippingDelayPrefix(five) == "reports.daily")
        #expect(NativeDelayedDelivery.strippingDelayPrefix("0.1.celery") == "0.1.celery", "too short to be a prefix")
        let max = NativeDelayedDelivery.routingKey(delaySeconds: NativeDelayedDelivery.longestDelaySeconds, key: "q")
        #expect(max == String(repeating: "1.", count: 28) + "q")
    }

    @Test func levelsAreDeclaredWithKombusArguments() {
        let top = NativeDelayedDelivery.levelArguments(27, type: .quorum)
        #expect(top["x-message-ttl"] == .int64(134_217_728_000))
        #expect(top["x-dead-letter-exchange"] == "celery_delayed_26")
        #expect(top["x-dead-letter-strategy"] == "at-least-once")
        #expect(top["x-overflow"] == "reject-publish")
        let bottom = NativeDelayedDelivery.levelArguments(0, type: .classic)
        #expect(bottom["x-message-ttl"] == .int32(1000))
        #expect(bottom["x-dead-letter-exchange"] == "celery_delayed_delivery")
        #expect(bottom["x-dead-letter-strategy"] == nil, "kombu sets it for quorum levels only")
        #expect(bottom["x-queue-type"] == "classic")
    }

    @Test func queuesAreBoundAsCeleryDoesForTopicAndFanoutAndExactlyForDirectAndTheDefaultExchange() {
        let definition = QueueDefinition(
            name: "q", kind: .quorum,
            bindings: [
                .init(exchange: "t", routingKey: "reports.#"), .init(exchange: "f", routingKey: ""),
                .init(exchange: "d", routingKey: "k"), .init(exchange: "amq.topic", routingKey: "#.x"),
            ])
        let bindings = DelayedDeliveryBindings(
            queue: "q", definition: definition, exchangeTypes: ["t": .topic, "f": .fanout, "d": .direct]
        ).bindings
        let stars = String(repeating: "*.", count: 28)
        #expect(
            bindings == [
                .queueToDelivery(pattern: stars + "q"),
                .exchangeToDelivery(exchange: "t", pattern: "#.reports.#"),
                .queueToExchange(exchange: "t", pattern: "#.reports.#"),
                .exchangeToDelivery(exchange: "f", pattern: "#."),
                .queueToExchange(exchange: "f", pattern: "#."),
                .queueToDelivery(pattern: stars + "k"),
                .exchangeToDelivery(exchange: "amq.topic", pattern: "#.x"),
                .queueToExchange(exchange: "amq.topic", pattern: "#.x"),
            ])
    }

    @Test func aCatchAllTopicBindingGetsNoDelayedDeliveryBindingThatWouldBringEveryDelayedTaskIn() {
        let definition = QueueDefinition(
            name: "audit", bindings: [.init(exchange: "t", routingKey: "#"), .init(exchange: "t", routingKey: "*.#")])
        let bindings = DelayedDeliveryBindings(queue: "audit", definition: definition, exchangeTypes: ["t": .topic])
        #expect(bindings.bindings == [.queueToDelivery(pattern: DelayedDeliveryBindings.exactPattern(for: "audit"))])
        #expect(bindings.skipped.count == 2)
        #expect(!DelayedDeliveryBindings.matchesEveryKey("#.reports.#"))
        #expect(DelayedDeliveryBindings.matchesEveryKey("#.#"))
    }

    // MARK: Against the broker

    /// Countdown tasks to queues behind a direct, a topic and a fanout exchange and the default exchange, classic
    /// and quorum: each runs once and never before its eta; a retry with a countdown goes through the levels too.
    @Test func countdownsReachQueuesBehindEveryKindOfExchangeOnceAndNeverEarly() async throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        let direct = "test.delay-direct.\(tag)", topic = "test.delay-topic.\(tag)", fanout = "test.delay-fanout.\(tag)"
        let queues = (1...5).map { "test.delayed\($0).\(tag)" }
        let topology = TasksConfiguration(
            exchanges: [
                ExchangeDefinition(name: direct, type: .direct), ExchangeDefinition(name: topic, type: .topic),
                ExchangeDefinition(name: fanout, type: .fanout),
            ],
            queues: [
                QueueDefinition(name: queues[0], kind: .classic, bindings: [.init(exchange: direct, routingKey: "k-\(tag)")]),
                QueueDefinition(name: queues[1], kind: .quorum, bindings: [.init(exchange: topic, routingKey: "r\(tag).#")]),
                QueueDefinition(name: queues[2], kind: .classic, bindings: [.init(exchange: fanout, routingKey: "f-\(tag)")]),
                QueueDefinition(name: queues[3], kind: .quorum),
                QueueDefinition(name: queues[4], kind: .quorum, bindings: [.init(exchange: direct, routingKey: "q-\(tag)")]),
            ])
        let starts = Starts()
        let worker = try await RunningWorker.start(
            queues: queues,
            register: { registry in
                try registry.register("delay.record") { context in
                    await starts.record(context.taskId, eta: context.message.etaDate)
                    if context.message.args.first == "retry", context.retries == 0 {
                        throw TaskRetry(countdown: .seconds(2))
                    }
                    return .string(context.queue)
                }
            }, configure: { $0.topology = topology })
        var routes = TaskRouter(configuration: topology)
        routes.defaultTarget = .queue(queues[3])
        let client = try await TaskClient.connect(url: Broker.url, routes: routes)
        func options(_ configure: (inout SendOptions) -> Void) -> SendOptions {
            var options = SendOptions()
            options.countdown = .milliseconds(2300)
            configure(&options)
            return options
        }
        let sends: [(SendOptions, String)] = [
            (options { $0.exchange = direct; $0.routingKey = "k-\(tag)" }, queues[0]),
            (options { $0.exchange = topic; $0.routingKey = "r\(tag).daily" }, queues[1]),
            // A fanout exchange ignores keys, but the delay levels route by them: the client binds the exchange for
            // the key it sends with.
            (options { $0.exchange = fanout; $0.routingKey = "anything-\(tag)" }, queues[2]),
            (options { _ in }, queues[3]),  // the default route: the default exchange
            (options { $0.queue = queues[3] }, queues[3]),
            (options { $0.exchange = direct; $0.routingKey = "q-\(tag)" }, queues[4]),
            // At most 1 s ahead: sent straight to the queue, and held by the worker until due.
            (options { $0.queue = queues[4]; $0.countdown = .milliseconds(800) }, queues[4]),
        ]
        var ids: [(String, String)] = []
        for (options, queue) in sends {
            ids.append((try await client.send("delay.record", args: ["once"], options: options), queue))
        }
        var retry = SendOptions(queue: queues[1])
        retry.countdown = .seconds(1)
        let retried = try await client.send("delay.record", args: ["retry"], options: retry)
        for (id, queue) in ids {
            do {
                #expect(try await client.value(for: id, timeout: .seconds(30)) == .string(queue), "task to \(queue)")
            } catch {
                Issue.record("the task to \(queue) got no result: \(error)")
            }
        }
        #expect(try await client.value(for: retried, timeout: .seconds(30)) == .string(queues[1]))
        try await worker.stop()
        for (id, queue) in ids { #expect(await starts.count(id) == 1, "task to \(queue) ran once") }
        #expect(await starts.count(retried) == 2, "the retry ran once more")
        #expect(await starts.early.isEmpty, "no task started before the eta it carried")
        let channel = try await Connection.open(url: Broker.url).openChannel()
        for queue in queues { _ = try? await channel.deleteQueue(queue) }
        for exchange in [direct, topic, fanout] { try? await channel.deleteExchange(exchange) }
        await client.close()
    }

    @Test func theClientRefusesGarbageAndTooLongDelaysAndRunsAPastETANow() async throws {
        let queue = uniqueQueue("delay-refusals")
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(url: Broker.url)
        var tooLong = SendOptions(queue: queue)
        tooLong.countdown = .seconds(NativeDelayedDelivery.longestDelaySeconds + 10)
        #expect(await Self.code { _ = try await client.send("demo.add", args: [1, 2], options: tooLong) } == .badArguments)
        var garbage = client.message("demo.add", args: [1, 2])
        garbage.eta = "tomorrow"
        #expect(await Self.code { try await client.send(garbage, options: SendOptions(queue: queue)) } == .badArguments)
        var notATime = SendOptions(queue: queue)
        notATime.eta = Date(timeIntervalSince1970: .nan)
        #expect(await Self.code { _ = try await client.send("demo.add", args: [1, 2], options: notATime) } == .badArguments)
        var nowhere = SendOptions(queue: uniqueQueue("delay-no-such-queue"))
        nowhere.countdown = .seconds(5)
        #expect(await Self.code { _ = try await client.send("demo.add", args: [1, 2], options: nowhere) } == .notConfirmed)
        var past = SendOptions(queue: queue)
        past.eta = Date().addingTimeInterval(-3600)
        let id = try await client.send("demo.add", args: [1, 2], options: past)
        #expect(try await client.value(for: id, timeout: .seconds(20)) == 3)
        try await worker.stop()
        await client.close()
        let channel = try await Connection.open(url: Broker.url).openChannel()
        _ = try? await channel.deleteQueue(queue)
    }

    /// A task whose `eta` header is not a time reaches `<queue>.dead` with the reason; the worker goes on.
    @Test func theWorkerDeadLettersAGarbageETAWithItsReason() async throws {
        let queue = uniqueQueue("delay-garbage")
        let worker = try await RunningWorker.start(queues: [queue])
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.publish(
            Data("[[1, 2], {}, {}]".utf8), routingKey: queue,
            properties: BasicProperties(
                contentType: "application/json",
                headers: ["task": "demo.add", "id": "garbage-eta-1", "eta": "next tuesday"]))
        let dead = try await BadInputTests.waitForDeadLetter(in: queue, on: channel)
        #expect(dead.properties.headers?[DeadLetters.Header.reason] == "invalid-header")
        #expect(dead.properties.headers?[DeadLetters.Header.error]?.stringValue?.contains("eta") == true)
        let client = try await TaskClient.connect(url: Broker.url)
        try await BadInputTests.expectAnswers(queue, client: client)
        try await worker.stop()
        await client.close()
        _ = try? await channel.deleteQueue(queue)
        _ = try? await channel.deleteQueue(DeadLetters.name(for: queue))
        await connection.close()
    }

    /// A task waiting in a delay queue of an earlier build (`amqp-tasks.delay.quorum.<N>s`, declared as that build
    /// declared it) still reaches its queue when due and runs: workers still bind their queues to `amqp-tasks.due`.
    @Test func aTaskWaitingInAnOldDelayQueueStillRuns() async throws {
        let queue = uniqueQueue("delay-upgrade")
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        try await DelayQueues.declareDue(on: channel)
        let old = "amqp-tasks.delay.quorum.8s"
        try await channel.declareExchange(old, type: .fanout, durable: true)
        try await channel.declareQueue(
            old, durable: true,
            arguments: [
                "x-queue-type": "quorum", "x-message-ttl": .int64(8000), "x-dead-letter-exchange": "amqp-tasks.due",
                "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
            ])
        try await channel.bindQueue(old, to: old)
        try await channel.declareQueue(queue, durable: true)
        // The new worker first (it consumes once it has bound its queue to the due exchange), then a task parked as
        // an old worker parked it: due in 8 s. Published before the worker, the task could come due while a loaded
        // broker still declared the worker's delay levels, before the binding existed (seen in a clean-clone CI).
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(url: Broker.url)
        let message = client.message("demo.add", args: [20, 22])
        let (properties, body) = message.encode()
        try await channel.publish(OutgoingMessage(body: body, exchange: old, routingKey: queue, properties: properties, mandatory: true))
        #expect(try await client.value(for: message.id, timeout: .seconds(60)) == 42)
        try await worker.stop()
        await client.close()
        _ = try? await channel.deleteQueue(queue)
        _ = try? await channel.deleteQueue(old)
        await connection.close()
    }

    /// A delayed task that came due while its queue had no binding (a node stopping drops its classic queues' routes
    /// for a moment) waits in `amqp-tasks.due.unroutable`; a worker consuming that queue sends it back when it
    /// connects, and leaves a task for another queue there. In the tenant vhost: other tests purge the default one's.
    @Test func aDelayedTaskSetAsideAsUnroutableGoesBackToItsQueueWhenAWorkerConnects() async throws {
        let url = "amqp://tenant:tenant-password@127.0.0.1:\(Broker.port)/amqp-tasks-tenant"
        let queue = uniqueQueue("delay-unroutable")
        let other = uniqueQueue("delay-unroutable-other")
        let connection = try await Connection.open(url: url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        try await DelayQueues.declareDue(on: channel)
        try await channel.declareQueue(queue, durable: true)
        let client = try await TaskClient.connect(url: url)
        let mine = client.message("demo.add", args: [20, 22])
        let theirs = client.message("demo.add", args: [1, 1])
        for (message, target) in [(mine, queue), (theirs, other)] {
            let (properties, body) = message.encode()
            try await channel.publish(
                OutgoingMessage(
                    body: body, exchange: DelayQueues.unroutable,
                    routingKey: NativeDelayedDelivery.routingKey(delaySeconds: 4, key: target), properties: properties,
                    mandatory: true))
        }
        // What a worker consuming `queue` does when it connects (called alone: a worker here would declare the
        // quorum delay levels in this vhost while another test deletes and declares them as classic).
        var logger = Logger(label: "test.unroutable")
        logger.logLevel = .critical
        #expect(await UnroutableDelayedTasks.resend(to: [queue], on: connection, logger: logger) == 1)
        let arrived = try #require(try await channel.get(queue: queue, autoAck: true))
        #expect(arrived.properties.headers?["id"]?.stringValue == mine.id)
        // The task for the other queue is still there, for a person (or that queue's worker) to take.
        var found: [String] = []
        while let delivery = try await channel.get(queue: DelayQueues.unroutable, autoAck: false) {
            let id = delivery.properties.headers?["id"]?.stringValue ?? ""
            found.append(id)
            if id == theirs.id { try await delivery.ack() }
        }
        #expect(found.contains(theirs.id))
        #expect(!found.contains(mine.id))
        await client.close()
        _ = try? await channel.deleteQueue(queue)
        await connection.close()
    }

    /// Levels someone declared as classic queues (Celery with `broker_native_delayed_delivery_queue_type =
    /// "classic"`) are used as they are, without a 406; in a vhost of their own, so other tests keep quorum levels.
    @Test func classicLevelsDeclaredFirstAreUsedAsTheyAre() async throws {
        let url = "amqp://tenant:tenant-password@127.0.0.1:\(Broker.port)/amqp-tasks-tenant"
        let connection = try await Connection.open(url: url)
        let channel = try await connection.openChannel()
        for level in 0..<NativeDelayedDelivery.levelCount {
            let name = NativeDelayedDelivery.levelName(level)
            _ = try? await channel.deleteQueue(name)
            try await channel.declareQueue(name, durable: true, arguments: NativeDelayedDelivery.levelArguments(level, type: .classic))
        }
        #expect(try await NativeDelayedDelivery.declare(on: connection) == .classic)
        #expect(try await NativeDelayedDelivery.declare(on: connection, preferred: .classic) == .classic)
        // And a delayed message goes through them.
        let queue = uniqueQueue("delay-classic-levels")
        let confirmed = try await connection.openChannel()
        try await confirmed.confirmSelect()
        try await confirmed.declareQueue(queue, durable: true)
        try await DelayedDeliveryBindings(queue: queue, definition: nil, exchangeTypes: [:]).declare(on: confirmed)
        try await NativeDelayedDelivery.publish(
            OutgoingMessage(body: Data("later".utf8), routingKey: queue), toQueue: queue, after: .seconds(1), on: confirmed)
        try await BadInputTests.waitUntil("the delayed message arrives") {
            try await confirmed.get(queue: queue, autoAck: true) != nil
        }
        _ = try? await confirmed.deleteQueue(queue)
        for level in 0..<NativeDelayedDelivery.levelCount {
            _ = try? await confirmed.deleteQueue(NativeDelayedDelivery.levelName(level))
        }
        await connection.close()
    }
}

extension DelayedDeliveryTests {
    /// A delivered message's routing key still carries the 28 digits of its delay: a dead letter carries the
    /// original key.
    @Test func aDeadLetterOfADelayedTaskCarriesItsOriginalRoutingKey() {
        let key = NativeDelayedDelivery.routingKey(delaySeconds: 3, key: "reports.daily")
        let received = ReceivedMessage(body: Data(), properties: BasicProperties(), queue: "q", routingKey: key)
        let copy = DeadLetters.message(for: received, queue: "q", reason: "r", error: "e", worker: "w")
        #expect(copy.routingKey == "reports.daily")
    }
}

import AMQP
import AMQPTasks
import AMQPTasksDemo
import Foundation
import Testing

@Suite struct WorkerTests {
    @Test func successFailureRetryAndUnknownTaskReachTheCaller() async throws {
        let queue = uniqueQueue()
        let worker = try await RunningWorker.start(queues: [queue], sendStarted: true) { _ in }
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)

        let add = try await client.send("demo.add", args: [2, 3], options: options)
        let states = try await client.states(for: add, timeout: .seconds(10))
        #expect(states.map(\.status) == [.started, .success])
        #expect(try await client.value(for: add, timeout: .seconds(10)) == 5)

        let typed = try await client.send(DemoTasks.Add(x: 1.5, y: 2), options: options)
        #expect(try await client.value(for: typed, timeout: .seconds(10)) == .double(3.5))

        let fail = try await client.send("demo.fail", args: ["bad value"], options: options)
        let failure = try await client.result(for: fail, timeout: .seconds(10))
        #expect(failure.status == .failure)
        #expect(failure.failure == TaskFailure(type: "ValueError", message: "bad value"))

        let flaky = try await client.send("demo.flaky", args: [1], options: options)
        let flakyStates = try await client.states(for: flaky, timeout: .seconds(15))
        #expect(flakyStates.map(\.status) == [.started, .retry, .started, .success])
        #expect(try await client.value(for: flaky, timeout: .seconds(15)) == 1)

        let unknown = try await client.send("no.such.task", options: options)
        let notRegistered = try await client.result(for: unknown, timeout: .seconds(10))
        #expect(notRegistered.failure == .notRegistered("no.such.task"))

        try await worker.stop()
        await client.close()
    }

    @Test func retriesStopAtMaxRetriesWithAFailure() async throws {
        let queue = uniqueQueue()
        let runs = RunLog()
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("always.retry") { context in
                await runs.record(context.taskId)
                throw TaskRetry(countdown: .seconds(1), maxRetries: 2, reason: TaskFailure(type: "KeyError", message: "again"))
            }
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("always.retry", options: SendOptions(queue: queue))
        let result = try await client.result(for: id, timeout: .seconds(20))
        #expect(result.status == .failure)
        #expect(result.failure?.type == "KeyError")
        #expect(await runs.count(id) == 3, "first attempt and two retries")
        try await worker.stop()
        await client.close()
    }

    @Test func tenThousandTasksAcrossThreeWorkersRunExactlyOnce() async throws {
        let queue = uniqueQueue("many")
        let runs = RunLog()
        var workers: [RunningWorker] = []
        for _ in 0..<3 {
            workers.append(
                try await RunningWorker.start(queues: [queue]) { registry in
                    try registry.register("count.me") { context in
                        await runs.record(context.taskId)
                        return .string(context.hostname)
                    }
                })
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let messages = (0..<10_000).map { i in client.message("count.me", args: [.int(i)], options: SendOptions(queue: queue)) }
        let sent = try await client.sendBatch(messages, options: SendOptions(queue: queue))
        let ids = try sent.map { try $0.get() }
        #expect(Set(ids).count == 10_000)
        for id in ids {
            let result = try await client.result(for: id, timeout: .seconds(120))
            #expect(result.status == .success)
        }
        #expect(await runs.runs.count == 10_000)
        #expect(await runs.runs.values.allSatisfy { $0 == 1 }, "every task ran exactly once")
        for worker in workers { try await worker.stop() }
        await client.close()
    }

    @Test func prefetchOneHoldsOneTaskPerConsumer() async throws {
        let queue = uniqueQueue("prefetch")
        let gate = Gate()
        let worker = try await RunningWorker.start(queues: [queue], concurrency: 2) { registry in
            try registry.register("gate.wait") { _ in
                await gate.wait()
                return "released"
            }
        }
        let client = try await TaskClient.connect(url: Broker.url)
        var ids: [String] = []
        for _ in 0..<6 { ids.append(try await client.send("gate.wait", options: SendOptions(queue: queue))) }
        // Both consumers hold one task each, blocked in the handler; the broker keeps the other four. No wait is
        // needed for the broker to "settle": a queue hands a message to a consumer with free prefetch when the
        // message arrives, before it confirms it, so once all six sends are confirmed and both handlers run, every
        // delivery the prefetch allows has happened, and the queue answers queue.declare after those.
        try await gate.waitForWaiters(2)
        let channel = try await client.openChannel()
        let state = try await channel.inspectQueue(queue)
        #expect(state.messageCount == 4, "two consumers with prefetch 1 hold two tasks; four wait in the queue")
        await gate.open()
        for id in ids { #expect(try await client.value(for: id, timeout: .seconds(20)) == "released") }
        try await worker.stop()
        await client.close()
    }

    @Test func badInputsEndInTheDeadLetterQueueWithTheirReason() async throws {
        let queue = uniqueQueue("bad")
        let worker = try await RunningWorker.start(queues: [queue]) { _ in }
        let client = try await TaskClient.connect(url: Broker.url)
        let channel = try await client.openChannel()
        try await channel.confirmSelect()
        let cases: [(reason: String, properties: BasicProperties, body: String, id: String?)] = [
            ("unsupported-content-type",
             BasicProperties(contentType: "application/x-python-serialize", headers: ["task": "demo.add", "id": "pickle-1"], replyTo: client.replyQueue),
             "\u{80}\u{04}garbage", "pickle-1"),
            ("invalid-json",
             BasicProperties(contentType: "application/json", headers: ["task": "demo.add", "id": "garbage-1"], replyTo: client.replyQueue),
             "{this is not json", "garbage-1"),
            ("not-a-task-message", BasicProperties(contentType: "application/json"), "{\"hello\": 1}", nil),
            ("invalid-body",
             BasicProperties(contentType: "application/json", headers: ["task": "demo.add", "id": "shape-1"], replyTo: client.replyQueue),
             "[1, 2]", "shape-1"),
            ("unknown-task",
             BasicProperties(contentType: "application/json", headers: ["task": "nope", "id": "unknown-1"], replyTo: client.replyQueue),
             "[[], {}, {}]", "unknown-1"),
        ]
        for item in cases {
            try await channel.publish(Data(item.body.utf8), routingKey: queue, properties: item.properties)
        }
        for item in cases {
            if let id = item.id {
                let result = try await client.result(for: id, timeout: .seconds(10))
                #expect(result.status == .failure, "\(item.reason) tells the caller")
            }
        }
        let dead = DeadLetters.name(for: queue)
        var reasons: [String] = []
        for _ in 0..<50 where reasons.count < cases.count {
            if let message = try await channel.get(queue: dead, autoAck: true) {
                reasons.append(message.properties.headers?[DeadLetters.Header.reason]?.stringValue ?? "?")
                #expect(message.properties.headers?[DeadLetters.Header.error]?.stringValue?.isEmpty == false)
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(reasons.sorted() == cases.map(\.reason).sorted())
        // Nothing loops: a marker task sent after the bad inputs is answered only once the one consumer has taken
        // every earlier message for good. A bad input requeued (nack) goes back to the head of the queue and would
        // be delivered again and again ahead of the marker; one republished to the queue would come after it and
        // still be there when the worker stops.
        let marker = try await client.send("demo.add", args: [20, 22], options: SendOptions(queue: queue))
        #expect(try await client.value(for: marker, timeout: .seconds(10)) == 42)
        try await worker.stop()
        #expect(try await channel.inspectQueue(queue).messageCount == 0, "nothing went back to the task queue")
        #expect(try await channel.get(queue: dead, autoAck: true) == nil, "each bad input was dead-lettered once")
        await client.close()
    }

    @Test func expiredTasksAreRevokedAndCountdownsWaitInTheBroker() async throws {
        let queue = uniqueQueue("timing")
        let runs = RunLog()
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("timed") { context in
                await runs.record(context.taskId)
                return .double(Date().timeIntervalSince1970)
            }
        }
        let client = try await TaskClient.connect(url: Broker.url)
        var expired = SendOptions(queue: queue)
        expired.expiresIn = .seconds(-1)
        let revoked = try await client.send("timed", options: expired)
        #expect(try await client.result(for: revoked, timeout: .seconds(10)).status == .revoked)
        #expect(await runs.count(revoked) == 0, "an expired task does not run")

        var later = SendOptions(queue: queue)
        later.countdown = .seconds(2)
        let sentAt = Date().timeIntervalSince1970
        let delayed = try await client.send("timed", options: later)
        let ranAt = try #require(try await client.value(for: delayed, timeout: .seconds(15)).doubleValue)
        // A task never runs before its eta, which is set after `sentAt`: so it cannot run sooner than this after
        // `sentAt`, however fast or slow the broker delivers it.
        #expect(ranAt - sentAt >= 2, "ran after its countdown")
        try await worker.stop()
        await client.close()
    }

    @Test func linkCallbacksAndErrbacksAreSentOn() async throws {
        let queue = uniqueQueue("link")
        let worker = try await RunningWorker.start(queues: [queue]) { _ in }
        let client = try await TaskClient.connect(url: Broker.url)
        var options = SendOptions(queue: queue)
        options.link = [TaskSignature("demo.add", args: [10], options: ["task_id": .string("callback-\(queue)")])]
        let parent = try await client.send("demo.add", args: [2, 3], options: options)
        #expect(try await client.value(for: parent, timeout: .seconds(10)) == 5)
        #expect(try await client.value(for: "callback-\(queue)", timeout: .seconds(10)) == 15)

        var failing = SendOptions(queue: queue)
        failing.linkError = [TaskSignature("demo.echo", options: ["task_id": .string("errback-\(queue)")])]
        let failed = try await client.send("demo.fail", options: failing)
        #expect(try await client.result(for: failed, timeout: .seconds(10)).status == .failure)
        #expect(try await client.value(for: "errback-\(queue)", timeout: .seconds(10)) == [.string(failed)])
        try await worker.stop()
        await client.close()
    }

    @Test func execHandlersSucceedFailAndRetry() async throws {
        let queue = uniqueQueue("exec")
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("exec.echo", ExecHandler(command: ["/bin/cat"]))
            try registry.register("exec.fail", ExecHandler(command: ["/bin/sh", "-c", "echo disk full >&2; exit 3"]))
            try registry.register(
                "exec.tempfail",
                ExecHandler(command: ["/bin/sh", "-c", "grep -q '\"retries\":1' && echo recovered || exit 75"]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let options = SendOptions(queue: queue)
        let echo = try await client.send("exec.echo", args: [1, "two"], kwargs: ["k": true], options: options)
        let value = try await client.value(for: echo, timeout: .seconds(10))
        #expect(value["args"] == [1, "two"])
        #expect(value["kwargs"] == ["k": true])
        #expect(value["id"] == .string(echo))
        let fail = try await client.send("exec.fail", options: options)
        let failure = try await client.result(for: fail, timeout: .seconds(10))
        #expect(failure.status == .failure)
        #expect(failure.failure?.message == "disk full")
        let retry = try await client.send("exec.tempfail", options: options)
        #expect(try await client.value(for: retry, timeout: .seconds(20)) == "recovered")
        try await worker.stop()
        await client.close()
    }

    @Test func unroutableTaskIsAnErrorNotALoss() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        // A task to a missing queue is not reported as sent: not confirmed, with the broker's own word as the cause.
        let error = await #expect(throws: TaskClientError.self) {
            _ = try await client.send("demo.add", options: SendOptions(queue: uniqueQueue("nowhere")))
        }
        #expect(error?.code == .notConfirmed)
        #expect(error?.cause?.kind == .unroutable)
        await client.close()
    }

    /// Final results are persistent by default, so a broker restart keeps a result the worker was told is safe;
    /// progress states (STARTED) stay transient; `persistentResults = false` sends results as Celery's rpc does.
    @Test(arguments: [true, false])
    func finalResultsArePersistentUnlessTurnedOff(persistent: Bool) async throws {
        let queue = uniqueQueue("persist")
        let replies = uniqueQueue("replies")
        let worker = try await RunningWorker.start(queues: [queue], sendStarted: true, persistentResults: persistent)
        let client = try await TaskClient.connect(url: Broker.url)
        let channel = try await client.openChannel()
        try await channel.declareQueue(replies, durable: true)
        var message = client.message("demo.add", args: [2, 3])
        message.replyTo = replies
        try await client.send(message, options: SendOptions(queue: queue))
        var states: [(TaskState, UInt8?)] = []
        for _ in 0..<100 where states.count < 2 {
            if let delivery = try await channel.get(queue: replies, autoAck: true) {
                states.append((try ResultMessage.decode(body: delivery.body).status, delivery.properties.deliveryMode))
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(states.map(\.0) == [.started, .success])
        #expect(states.first?.1 == BasicProperties.DeliveryMode.transient, "STARTED is progress, not an outcome")
        #expect(
            states.last?.1
                == (persistent ? BasicProperties.DeliveryMode.persistent : BasicProperties.DeliveryMode.transient))
        try await channel.deleteQueue(replies)
        try await worker.stop()
        await client.close()
    }
}

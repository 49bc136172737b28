import AMQP
@testable import AMQPTasks
import Foundation
import Logging
import Testing

/// `ChordState.join`: the pure rule that makes a chord fire once, whatever order and however often members come.
@Suite struct ChordStateTests {
    @Test func eachMemberJoinsOnceAndTheLastCompletesWithResultsInMemberOrder() {
        var state = ChordState(chordId: "c", size: 3, callback: TaskSignature("t.cb").json)
        #expect(state.join(index: 2, taskId: "m2", .succeeded(.int(20))) == .waiting(joined: 1))
        #expect(state.join(index: 2, taskId: "m2", .succeeded(.int(99))) == .unchanged)
        #expect(state.join(index: 3, taskId: "stray", .succeeded(.int(3))) == .unchanged)
        #expect(state.join(index: 0, taskId: "m0", .succeeded(.int(0))) == .waiting(joined: 2))
        #expect(state.join(index: 1, taskId: "m1", .succeeded(.null)) == .complete([.int(0), .null, .int(20)]))
        #expect(state.finished)
        #expect(state.join(index: 1, taskId: "m1", .succeeded(.null)) == .unchanged)
        #expect(state.join(index: 0, taskId: "m0", .failed(TaskFailure(type: "ValueError", message: "late"))) == .unchanged)
    }

    @Test func aFailedMemberFinishesTheChordAndLaterMembersChangeNothing() throws {
        var state = ChordState(chordId: "c", size: 3, callback: TaskSignature("t.cb").json)
        _ = state.join(index: 0, taskId: "m0", .succeeded(.int(1)))
        let error = TaskFailure(type: "ValueError", message: "boom")
        #expect(state.join(index: 1, taskId: "m1", .failed(error)) == .failed(.init(index: 1, taskId: "m1", error: error)))
        #expect(state.join(index: 2, taskId: "m2", .succeeded(.int(3))) == .unchanged)
        let decoded = try ChordState.decode(state.json.jsonData())
        #expect(decoded == state)
    }

    @Test func aMessageThatIsNoStateIsRefusedWithWhatItLacks() {
        #expect(throws: ChordStateError.self) { try ChordState.decode(Data("{\"size\": 2}".utf8)) }
    }

    @Test func aFinishedChordsCallbackGoesWhereItsSignatureSaysWithTheResultsFirst() throws {
        var callback = TaskSignature("t.cb", args: [.string("extra")])
        callback.options = ["task_id": "cb-id", "reply_to": "replies", "queue": "callbacks"]
        let state = ChordState(chordId: "c", size: 2, callback: callback.json)
        let firing = try #require(ChordFiring(state: state, defaultQueue: "members", parentId: "m1", rootId: nil))
        let message = firing.callbackMessage(results: [.int(1), .int(2)])
        #expect(message.routingKey == "callbacks")
        let task = try TaskMessage.decode(properties: message.properties, body: message.body)
        #expect(task.id == "cb-id")
        #expect(task.args == [.array([.int(1), .int(2)]), .string("extra")])
        #expect(task.replyTo == "replies")
    }
}

/// Groups, chains and chords against the real broker, with workers in this process.
@Suite struct CanvasTests {
    /// Counts runs of the tasks the chord tests register, by name.
    static func register(_ log: RunLog) -> (inout TaskRegistry) throws -> Void {
        { registry in
            try registry.register("test.collect") { context in
                await log.record("collect")
                return context.message.args.first ?? .null
            }
            try registry.register("test.errback") { context in
                await log.record("errback")
                await log.record("errback:\(context.message.args.first?.stringValue ?? "?")")
                return .null
            }
        }
    }

    /// Waits until the chord's queue is gone (the chord finished and its finisher deleted it).
    static func waitUntilChordQueueIsGone(_ chordId: String, seconds: Double = 90) async throws {
        let connection = try await Connection.open(url: Broker.url)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let channel = try await connection.openChannel()
            do {
                _ = try await channel.inspectQueue(ChordQueue.name(chordId))
                try? await channel.close()
            } catch let error as AMQPError where error.replyCode == .notFound {
                await connection.close()
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        await connection.close()
        throw TestFailure("the queue of chord \(chordId) still exists after \(seconds) s")
    }

    static func deleteQueues(_ names: [String]) async throws {
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        for name in names { _ = try? await channel.deleteQueue(name) }
        await connection.close()
    }

    @Test func aGroupsResultsComeInOrderAndEachNamesTheGroup() async throws {
        let queue = uniqueQueue("group")
        let worker = try await RunningWorker.start(queues: [queue], concurrency: 4)
        let client = try await TaskClient.connect(url: Broker.url)
        let members = (0..<10).map { TaskSignature("demo.sleep_value", args: [.int($0), .double(Double(10 - $0) / 200)]) }
        let group = try await client.send(group: members, options: SendOptions(queue: queue))
        #expect(group.taskIds.count == 10)
        let results = try await group.results(from: client, timeout: .seconds(30))
        #expect(results.map(\.result) == (0..<10).map { .int($0) })
        #expect(results.map(\.taskId) == group.taskIds)
        #expect(results.allSatisfy { $0.groupId == group.id })
        let failing = try await client.send(
            group: [TaskSignature("demo.add", args: [1, 1]), TaskSignature("demo.fail", args: ["second"])],
            options: SendOptions(queue: queue))
        await #expect(throws: TaskFailure(type: "ValueError", message: "second")) {
            try await failing.values(from: client, timeout: .seconds(30))
        }
        await client.close()
        try await worker.stop()
        try await Self.deleteQueues([queue])
    }

    @Test func aChainBuiltInSwiftRunsEachStepWithThePreviousResult() async throws {
        let queue = uniqueQueue("chain")
        let worker = try await RunningWorker.start(queues: [queue], concurrency: 2)
        let client = try await TaskClient.connect(url: Broker.url)
        let add = { (args: [JSONValue]) in TaskSignature("demo.add", args: args) }
        let chain = try await client.send(
            chain: add([1, 2]) | add([3]) | add([4]) | TaskSignature("demo.echo", args: ["fixed"]).immutableCopy,
            options: SendOptions(queue: queue))
        #expect(chain.taskIds.count == 4)
        #expect(try await client.value(for: chain.taskIds[2], timeout: .seconds(30)) == .int(10))
        #expect(try await client.value(for: chain.lastId, timeout: .seconds(30)) == .array(["fixed"]))
        await client.close()
        try await worker.stop()
        try await Self.deleteQueues([queue])
    }

    /// The sender closes right after sending; another client, on the same reply queue, reads the callback's result.
    @Test func aChordFiresItsCallbackOnceWithEveryResultInOrderAfterItsSenderLeft() async throws {
        let queue = uniqueQueue("chord")
        let replyQueue = uniqueQueue("chordreply")
        let log = RunLog()
        let workers = [
            try await RunningWorker.start(queues: [queue], concurrency: 4, register: Self.register(log)),
            try await RunningWorker.start(queues: [queue], concurrency: 4, register: Self.register(log)),
        ]
        let sender = try await TaskClient.connect(url: Broker.url, replyQueue: replyQueue)
        let members = (0..<40).map { TaskSignature("demo.sleep_value", args: [.int($0), .double(Double($0 % 7) / 100)]) }
        let chord = try await sender.send(
            chord: members, callback: TaskSignature("test.collect"), options: SendOptions(queue: queue))
        await sender.close()

        let reader = try await TaskClient.connect(url: Broker.url, replyQueue: replyQueue)
        let result = try await reader.result(for: chord.callbackId, timeout: .seconds(60))
        #expect(result.status == .success)
        #expect(result.result == .array((0..<40).map { .int($0) }))
        try await Self.waitUntilChordQueueIsGone(chord.id)
        for worker in workers { try await worker.stop() }
        #expect(await log.count("collect") == 1)
        await reader.close()
        try await Self.deleteQueues([queue, replyQueue])
    }

    @Test func aFailedMemberRunsTheErrbackOnceAndNeverTheCallback() async throws {
        let queue = uniqueQueue("chordfail")
        let log = RunLog()
        let worker = try await RunningWorker.start(queues: [queue], concurrency: 4, register: Self.register(log))
        let client = try await TaskClient.connect(url: Broker.url)
        var members = (0..<8).map { TaskSignature("demo.add", args: [.int($0), 0]) }
        members[5] = TaskSignature("demo.fail", args: ["member five fails"])
        let chord = try await client.send(
            chord: members, callback: TaskSignature("test.collect"), errbacks: [TaskSignature("test.errback")],
            options: SendOptions(queue: queue))
        let result = try await client.result(for: chord.callbackId, timeout: .seconds(60))
        #expect(result.status == .failure)
        #expect(result.failure?.type == "ChordError")
        #expect(result.failure?.message.contains(chord.group.taskIds[5]) == true)
        #expect(result.failure?.message.contains("member five fails") == true)
        try await Self.waitUntilChordQueueIsGone(chord.id)
        // The errback is sent in the same transaction as the FAILURE: wait for it to have run.
        for _ in 0..<300 where await log.count("errback") == 0 { try await Task.sleep(for: .milliseconds(50)) }
        try await worker.stop()
        #expect(await log.count("errback") == 1)
        #expect(await log.count("errback:\(chord.callbackId)") == 1)
        #expect(await log.count("collect") == 0)
        await client.close()
        try await Self.deleteQueues([queue])
    }

    /// 100 members on two `amqp-worker` processes, both SIGKILLed mid-way (tasks running, joins possibly in their
    /// transaction); a third worker finishes. The callback goes to a queue nobody consumes until the chord is gone,
    /// so the test counts the callbacks sent: exactly one, with the 100 results in order.
    @Test func aChordOfAHundredSurvivesTwoWorkersKilledMidWayAndFiresOnce() async throws {
        let queue = uniqueQueue("chordkill")
        let callbacks = uniqueQueue("chordkillcb")
        let replyQueue = uniqueQueue("chordkillreply")
        let connection = try await Connection.open(url: Broker.url)
        let setup = try await connection.openChannel()
        try await setup.declareQueue(queue)
        try await setup.declareQueue(callbacks)
        let killed = try (0..<2).map {
            try WorkerProcess(["--demo-tasks", "--queue", queue, "--concurrency", "4", "--hostname", "kill\($0)@test"])
        }
        for worker in killed { try await worker.waitFor("consuming \(queue)") }

        let sender = try await TaskClient.connect(url: Broker.url, replyQueue: replyQueue)
        // 0.2 to 0.6 s each: the 8 slots need about 5 s for all, so the kill below (once 30 were taken) finds
        // members running and more queued even on a loaded machine (with 0 to 0.08 s they could all be done first).
        let members = (0..<100).map { TaskSignature("demo.sleep_value", args: [.int($0), .double(0.2 + Double($0 % 5) / 10)]) }
        let chord = try await sender.send(
            chord: members, callback: TaskSignature("demo.echo", options: ["queue": .string(callbacks)]),
            options: SendOptions(queue: queue))
        await sender.close()

        // Mid-way: at least 30 members taken, and some running.
        let deadline = Date().addingTimeInterval(60)
        while try await setup.inspectQueue(queue).messageCount > 70 {
            guard Date() < deadline else { throw TestFailure("the workers took fewer than 30 members in 60 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
        for worker in killed { worker.signal(SIGKILL) }
        for worker in killed { _ = try await worker.exitStatus() }
        #expect(try await setup.inspectQueue(callbacks).messageCount == 0)

        let finisher = try WorkerProcess(["--demo-tasks", "--queue", queue, "--concurrency", "4", "--hostname", "finisher@test"])
        try await Self.waitUntilChordQueueIsGone(chord.id)
        // The killed workers' running members came again (and joined, or found theirs joined already).
        #expect(finisher.output.contains("(redelivered)"))
        #expect(try await setup.inspectQueue(callbacks).messageCount == 1)
        let sent = try #require(try await setup.get(queue: callbacks))
        let callback = try TaskMessage.decode(properties: sent.properties, body: sent.body)
        #expect(callback.id == chord.callbackId)
        #expect(callback.args == [.array((0..<100).map { .int($0) })])
        try await sent.nack(requeue: true)

        // Run it, and read its result from another client on the sender's reply queue.
        let callbackWorker = try await RunningWorker.start(queues: [callbacks])
        let reader = try await TaskClient.connect(url: Broker.url, replyQueue: replyQueue)
        let result = try await reader.result(for: chord.callbackId, timeout: .seconds(30))
        #expect(result.result == .array([.array((0..<100).map { .int($0) })]))
        try await callbackWorker.stop()
        #expect(try await setup.inspectQueue(callbacks).messageCount == 0)
        finisher.signal(SIGTERM)
        _ = try await finisher.exitStatus()
        await reader.close()
        await connection.close()
        try await Self.deleteQueues([queue, callbacks, replyQueue])
    }
}

/// The crash cases of `ChordBarrier`, made deterministic: the test itself plays the worker that dies.
@Suite struct ChordCrashTests {
    /// Every member delivered twice, as after workers killed between their join's commit and their ack: each joins
    /// once, and exactly one callback is sent, with every result in order.
    @Test func membersDeliveredTwiceJoinOnceAndTheCallbackIsSentOnce() async throws {
        let queue = uniqueQueue("chorddup")
        let callbacks = uniqueQueue("chorddupcb")
        let connection = try await Connection.open(url: Broker.url)
        let setup = try await connection.openChannel()
        try await setup.declareQueue(queue)
        try await setup.declareQueue(callbacks)
        let client = try await TaskClient.connect(url: Broker.url)
        let members = (0..<12).map { TaskSignature("demo.add", args: [.int($0), 0]) }
        let chord = try await client.send(
            chord: members, callback: TaskSignature("demo.echo", options: ["queue": .string(callbacks)]),
            options: SendOptions(queue: queue))
        await client.close()
        // No worker yet: double every member.
        let copier = try await connection.openChannel()
        try await copier.confirmSelect()
        var originals: [Delivery] = []
        while let delivery = try await setup.get(queue: queue) { originals.append(delivery) }
        #expect(originals.count == 12)
        for original in originals {
            for _ in 0..<2 {
                try await copier.publish(OutgoingMessage(body: original.body, routingKey: queue, properties: original.properties))
            }
        }
        for original in originals { try await original.ack() }

        let worker = try await RunningWorker.start(queues: [queue], concurrency: 4)
        try await CanvasTests.waitUntilChordQueueIsGone(chord.id)
        let deadline = Date().addingTimeInterval(30)
        while try await setup.inspectQueue(queue).messageCount > 0 {
            guard Date() < deadline else { throw TestFailure("the 24 member deliveries were not all taken in 30 s") }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await worker.stop()  // lets the members still running finish their joins
        #expect(try await setup.inspectQueue(callbacks).messageCount == 1)
        let sent = try #require(try await setup.get(queue: callbacks))
        let callback = try TaskMessage.decode(properties: sent.properties, body: sent.body)
        #expect(callback.id == chord.callbackId)
        #expect(callback.args == [.array((0..<12).map { .int($0) })])
        try await sent.ack()
        await connection.close()
        try await CanvasTests.deleteQueues([queue, callbacks])
    }

    /// A worker that dies during its turn, its transaction written but not committed: nothing of it applies, the
    /// state comes back, and the members waiting for their turn complete the chord once.
    @Test func aHolderThatDiesBeforeItsCommitChangesNothingAndTheOthersFinish() async throws {
        let queue = uniqueQueue("chordholder")
        let callbacks = uniqueQueue("chordholdercb")
        let connection = try await Connection.open(url: Broker.url)
        let setup = try await connection.openChannel()
        try await setup.declareQueue(queue)
        try await setup.declareQueue(callbacks)
        let client = try await TaskClient.connect(url: Broker.url)
        let chord = try await client.send(
            chord: (0..<6).map { TaskSignature("demo.add", args: [.int($0), 0]) },
            callback: TaskSignature("demo.echo", options: ["queue": .string(callbacks)]),
            options: SendOptions(queue: queue))
        await client.close()

        // The dying holder: takes the state, and in an uncommitted transaction "finishes" the chord wrongly.
        let holderConnection = try await Connection.open(url: Broker.url)
        let holder = try await holderConnection.openChannel()
        try await holder.selectTransactions()
        try await holder.setPrefetch(1)
        var deliveries = try await holder.consume(queue: ChordQueue.name(chord.id)).makeAsyncIterator()
        let held = try #require(try await deliveries.next())
        var wrong = try ChordState.decode(held.body)
        wrong.finished = true
        try await holder.publish(wrong.outgoing())
        try await holder.publish(OutgoingMessage(body: Data("[[], {}, {}]".utf8), routingKey: callbacks))
        try await held.ack()

        let worker = try await RunningWorker.start(queues: [queue], concurrency: 6)
        // Every member was taken (one per consumer) and, once run, waits for its turn: none is acknowledged yet.
        let deadline = Date().addingTimeInterval(30)
        while try await setup.inspectQueue(queue).messageCount > 0 {
            guard Date() < deadline else { throw TestFailure("the worker did not take the 6 members in 30 s") }
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(try await setup.inspectQueue(callbacks).messageCount == 0)
        await holderConnection.close()  // dies: the transaction is discarded, the state goes back

        try await CanvasTests.waitUntilChordQueueIsGone(chord.id)
        try await worker.stop()
        #expect(try await setup.inspectQueue(callbacks).messageCount == 1)
        let sent = try #require(try await setup.get(queue: callbacks))
        let callback = try TaskMessage.decode(properties: sent.properties, body: sent.body)
        #expect(callback.args == [.array((0..<6).map { .int($0) })])
        try await sent.ack()
        await connection.close()
        try await CanvasTests.deleteQueues([queue, callbacks])
    }
}

extension CanvasTests {
    @Test func aChordIdUnderWayAlreadyIsRefusedAndNothingIsSent() async throws {
        let queue = uniqueQueue("chordreuse")
        let connection = try await Connection.open(url: Broker.url)
        let setup = try await connection.openChannel()
        try await setup.declareQueue(queue)
        let client = try await TaskClient.connect(url: Broker.url)
        let chordId = UUID().uuidString.lowercased()
        let members = [TaskSignature("demo.add", args: [1, 1])]
        _ = try await client.send(chord: members, callback: TaskSignature("demo.echo"), chordId: chordId, options: SendOptions(queue: queue))
        await #expect(throws: TaskClientError.self) {
            try await client.send(chord: members, callback: TaskSignature("demo.echo"), chordId: chordId, options: SendOptions(queue: queue))
        }
        #expect(try await setup.inspectQueue(queue).messageCount == 1)
        #expect(try await setup.inspectQueue(ChordQueue.name(chordId)).messageCount == 1)
        await client.close()
        await connection.close()
        try await Self.deleteQueues([queue, ChordQueue.name(chordId)])
    }
}

extension CanvasTests {
    @Test func aChordWhoseMembersCannotAllBeSentIsAbandonedWithoutItsQueue() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let chordId = UUID().uuidString.lowercased()
        await #expect(throws: TaskClientError.self) {
            try await client.send(
                chord: [TaskSignature("demo.add", args: [1, 1])], callback: TaskSignature("demo.echo"), chordId: chordId,
                options: SendOptions(queue: uniqueQueue("nosuchqueue")))
        }
        await client.close()
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        await #expect(throws: AMQPError.self) { try await channel.inspectQueue(ChordQueue.name(chordId)) }
        await connection.close()
    }
}

extension CanvasTests {
    /// Each member's result fits the worker's `max_result_size`, but together they do not: the state that carries
    /// them (and the callback after it) would pass the size a message may have, which the broker refuses at every
    /// attempt, so the chord would never end. It fails instead, naming the member that took it over.
    @Test func aChordWhoseResultsTogetherPassTheResultSizeFailsNamingTheMember() async throws {
        let queue = uniqueQueue("chordsize")
        let log = RunLog()
        let worker = try await RunningWorker.start(
            queues: [queue], register: Self.register(log), configure: { $0.maxResultSize = 100_000 })
        let client = try await TaskClient.connect(url: Broker.url)
        let big = String(repeating: "x", count: 60_000)
        let chord = try await client.send(
            chord: [TaskSignature("demo.echo", args: [.string(big)]), TaskSignature("demo.echo", args: [.string(big)])],
            callback: TaskSignature("test.collect"), errbacks: [TaskSignature("test.errback")],
            options: SendOptions(queue: queue))
        let result = try await client.result(for: chord.callbackId, timeout: .seconds(60))
        #expect(result.status == .failure)
        #expect(result.failure?.type == "ChordError", "\(String(describing: result.failure))")
        #expect(result.failure?.message.contains("ResultTooLarge") == true, "\(String(describing: result.failure))")
        try await Self.waitUntilChordQueueIsGone(chord.id)
        for _ in 0..<300 where await log.count("errback") == 0 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(await log.count("errback") == 1)
        #expect(await log.count("collect") == 0)
        await client.close()
        try await worker.stop()
        try await Self.deleteQueues([queue])
    }
}

extension CanvasTests {
    /// A callback routed through an exchange that no queue is bound to for its routing key comes back only once the
    /// chord's transaction is committed (the chord is finished then): its caller gets a FAILURE saying so, instead
    /// of waiting for a callback that never runs.
    @Test func aChordWhoseCallbackReachesNoQueueTellsItsCaller() async throws {
        let queue = uniqueQueue("chordlost")
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(url: Broker.url)
        let nowhere = uniqueQueue("nobinding")
        let chord = try await client.send(
            chord: [TaskSignature("demo.add", args: [1, 2])],
            callback: TaskSignature("demo.echo", options: ["exchange": "amq.direct", "routing_key": .string(nowhere)]),
            options: SendOptions(queue: queue))
        let result = try await client.result(for: chord.callbackId, timeout: .seconds(30))
        #expect(result.status == .failure)
        #expect(result.failure?.type == "ChordError", "\(String(describing: result.failure))")
        #expect(result.failure?.message.contains("reached no queue") == true, "\(String(describing: result.failure))")
        try await Self.waitUntilChordQueueIsGone(chord.id)
        await client.close()
        try await worker.stop()
        try await Self.deleteQueues([queue])
    }
}

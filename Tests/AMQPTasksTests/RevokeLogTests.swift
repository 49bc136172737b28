import AMQP
@testable import AMQPTasks
import Foundation
import Logging
import Testing

/// Revokes that last (the stream `RevokeLog`), on the real broker: each test has a stream of its own, deleted at
/// its end, so no revoke reaches another test's workers.
@Suite struct RevokeLogTests {
    func uniqueStream() -> String { "test.revoked.\(UUID().uuidString.prefix(8).lowercased())" }

    func deleteStream(_ stream: String) async throws {
        let connection = try await Connection.open(url: Broker.url)
        try await connection.openChannel().deleteQueue(stream)
        await connection.close()
    }

    /// Declares `stream` and lets `body` publish to it on a confirm channel of a connection of its own.
    func writeStream(_ stream: String, _ body: (Channel) async throws -> Void) async throws {
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await RevokeLog.declare(stream, on: channel)
        try await channel.confirmSelect()
        try await body(channel)
        await connection.close()
    }

    /// Sends `revoked` and then a marker task to `queue`; returns once the marker ran (so `revoked` was settled:
    /// it was ahead of the marker in the queue).
    func sendRevokedThenMarker(_ revoked: String, to queue: String, runs: RunLog) async throws -> String {
        let client = try await TaskClient.connect(url: Broker.url)
        var options = SendOptions(queue: queue)
        options.taskId = revoked
        try await client.send("log.run", options: options)
        options.taskId = nil
        let marker = try await client.send("log.run", options: options)
        for _ in 0..<1200 where await runs.count(marker) == 0 { try await Task.sleep(for: .milliseconds(50)) }
        await client.close()
        return marker
    }

    func startWorker(_ queue: String, stream: String, runs: RunLog) async throws -> RunningWorker {
        try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("log.run") { context in
                    await runs.record(context.taskId)
                    return .null
                }
            },
            configure: {
                $0.revokeLog = stream
                $0.remoteControl = .all
            })
    }

    /// Publishes a revoke as Celery's `celery control revoke -d …` does (on the fanout exchange, so every worker
    /// receives it, for the workers `hostnames`) and returns their answers, once all came (30 s at most).
    func broadcastRevoke(_ id: String, to hostnames: [String]) async throws -> [String: JSONValue] {
        let requester = try await PidboxRequester.open()
        let request: JSONValue = [
            "method": "revoke", "arguments": ["task_id": .string(id), "terminate": false, "signal": "SIGTERM"],
            "reply_to": ["exchange": .string(RemoteControl.replyExchange), "routing_key": .string(requester.key)],
            "ticket": .string(UUID().uuidString.lowercased()), "destination": .array(hostnames.map(JSONValue.string)),
        ]
        try await requester.channel.publish(
            request.jsonData(), exchange: RemoteControl.exchange, routingKey: "",
            properties: BasicProperties(contentType: "application/json", contentEncoding: "utf-8"))
        var answers: [String: JSONValue] = [:]
        for _ in 0..<600 where answers.count < hostnames.count {
            if let delivery = try await requester.channel.get(queue: requester.replyQueue, autoAck: true) {
                for (hostname, answer) in try JSONValue.parse(delivery.body).objectValue ?? [:] { answers[hostname] = answer }
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await requester.close()
        return answers
    }

    /// The entries of `stream` that carry `id`, read from its start up to a marker written now.
    func entries(in stream: String, carrying id: String) async throws -> Int {
        let marker = UUID().uuidString
        try await writeStream(stream) { channel in
            try await channel.publish(
                RevokeLog.Entry(taskIDs: [], revokedAt: Date(), marker: marker).body, routingKey: stream)
        }
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.setPrefetch(100)
        let consumer = try await channel.consume(queue: stream, arguments: ["x-stream-offset": "first"])
        var count = 0
        for try await delivery in consumer {
            try await delivery.ack()
            guard case .success(let entry) = RevokeLog.Entry.parse(delivery.body) else { continue }
            if entry.marker == marker { break }
            if entry.taskIDs.contains(id) { count += 1 }
        }
        await connection.close()
        return count
    }

    /// A revoke from Celery's tools reaches every worker; one of them, not each, records it in the stream.
    @Test func aRevokeBroadcastToThreeWorkersIsRecordedOnce() async throws {
        let stream = uniqueStream()
        let queue = uniqueQueue("revokelog")
        let revoked = UUID().uuidString.lowercased()
        let runs = RunLog()
        var workers: [RunningWorker] = []
        for _ in 0..<3 { workers.append(try await startWorker(queue, stream: stream, runs: runs)) }
        // The three share the task queue, so only the first start waited for its consumers: wait until each one
        // answers a ping (a broadcast reaches only the pidbox queues that exist when it is sent).
        let pinger = try await PidboxRequester.open()
        for hostname in workers.map(\.worker.configuration.hostname) {
            var answered = false
            for _ in 0..<60 where !answered {
                try await pinger.send(hostname, "ping")
                for _ in 0..<10 where !answered {
                    if let reply = try await pinger.channel.get(queue: pinger.replyQueue, autoAck: true) {
                        answered = (try? JSONValue.parse(reply.body))?[hostname] != nil
                    } else {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
            }
            #expect(answered, "\(hostname) answers remote control")
        }
        try await pinger.close()
        let answers = try await broadcastRevoke(revoked, to: workers.map(\.worker.configuration.hostname))
        #expect(answers.count == 3 && answers.values.allSatisfy { $0["ok"] != nil }, "each worker obeyed: \(answers)")
        #expect(try await entries(in: stream, carrying: revoked) == 1, "one entry for the three workers")
        for worker in workers { try await worker.stop() }
        let later = try await startWorker(queue, stream: stream, runs: runs)
        #expect(later.worker.state.isRevoked(revoked), "the revoke lasts for a worker started later")
        try await later.stop()
        try await deleteStream(stream)
    }

    /// A revoke whose claim queue a first worker (`claimer`) holds, and a second worker's connection (`other`) that
    /// will be refused the claim: the set-up of the claim tests.
    private func claimHeldByAnotherWorker() async throws
        -> (stream: String, revoked: String, claim: String, claimer: Connection, other: Connection)
    {
        let stream = uniqueStream()
        let revoked = UUID().uuidString.lowercased()
        let claim = RevokeLog.claimQueue([revoked], stream: stream)
        let claimer = try await Connection.open(url: Broker.url)
        _ = try await claimer.openChannel().declareQueue(claim, durable: false, exclusive: true, autoDelete: false)
        let other = try await Connection.open(url: Broker.url)
        return (stream, revoked, claim, claimer, other)
    }

    /// The worker that claimed a broadcast revoke dies before it writes it (here: its connection closes while it
    /// holds the claim): another worker that was refused the claim claims it then and writes it; once written, no
    /// one writes it again, even after the writer's connection ended too. One entry in the stream.
    @Test func aRevokeWhoseClaimerDiesBeforeWritingIsWrittenByAnotherOnce() async throws {
        let (stream, revoked, claim, claimer, other) = try await claimHeldByAnotherWorker()
        let (refused, refusal) = AsyncStream<Void>.makeStream()
        let recording = Task {
            try await RevokeLog.recordOnce(
                [revoked], in: stream, writer: "other", on: other, waitingAtMost: .seconds(60),
                claimHeldElsewhere: { refusal.yield() })
        }
        var iterator = refused.makeAsyncIterator()
        _ = await iterator.next()  // the other worker was refused the claim: the claimer holds it
        await claimer.close()  // and dies before it writes
        #expect(try await recording.value, "the other worker wrote the revoke once the claimer was gone")
        let third = try await Connection.open(url: Broker.url)
        #expect(
            try await RevokeLog.recordOnce([revoked], in: stream, writer: "third", on: third) == false,
            "written already: not again")
        await other.close()
        #expect(
            try await RevokeLog.recordOnce([revoked], in: stream, writer: "third", on: third) == false,
            "not again after the writer's connection ended either")
        _ = try await third.openChannel().deleteQueue(RevokeLog.writtenQueue(claim))
        await third.close()
        #expect(try await entries(in: stream, carrying: revoked) == 1, "one entry in the stream")
        try await deleteStream(stream)
    }

    /// The claimer writes the revoke, declares the written queue and its connection ends (the worker stops) just
    /// after another worker looked for the written queue and just before that worker claims again: the claim is
    /// free, but the revoke is written; the other worker must not write it a second time. One entry in the stream.
    @Test func aClaimFreedAfterTheRevokeWasWrittenIsNotWrittenAgain() async throws {
        let (stream, revoked, claim, claimer, other) = try await claimHeldByAnotherWorker()
        let probe = try await Connection.open(url: Broker.url)
        let attempts = ClaimAttempts()
        let wrote = try await RevokeLog.recordOnce(
            [revoked], in: stream, writer: "other", on: other, waitingAtMost: .seconds(60),
            willClaim: {
                // The second claim attempt, after a refusal: the claimer finishes as a claimer does, then stops.
                guard await attempts.next() == 2 else { return }
                try await RevokeLog.record([revoked], in: stream, writer: "claimer", on: claimer)
                _ = try await claimer.openChannel().declareQueue(
                    RevokeLog.writtenQueue(claim), durable: false, exclusive: false, autoDelete: false)
                await claimer.close()
                // The broker deletes the claim once it sees the connection gone: wait for that, so the next claim is
                // not refused (which would only delay this case, not test it).
                for _ in 0..<600 {
                    let channel = try await probe.openChannel()
                    do {
                        _ = try await channel.inspectQueue(claim)
                        try? await channel.close()
                    } catch let error as AMQPError where error.replyCode == .notFound {
                        return
                    } catch let error as AMQPError where error.replyCode == .resourceLocked {}
                    try await Task.sleep(for: .milliseconds(20))
                }
                throw TestFailure("the broker kept the claim of a closed connection")
            })
        await probe.close()
        #expect(await attempts.value == 2, "the claim was refused once, then taken")
        #expect(!wrote, "written by the claimer: not by the other worker")
        _ = try await other.openChannel().deleteQueue(RevokeLog.writtenQueue(claim))
        await other.close()
        #expect(try await entries(in: stream, carrying: revoked) == 1, "one entry in the stream")
        try await deleteStream(stream)
    }

    /// A stream the broker refuses (here: a classic queue of that name) cannot stall remote control: the revoke is
    /// answered, with an error saying it holds only in the worker, and the worker answers the next request.
    @Test func aRevokeThatCannotBeRecordedIsAnsweredWithAnErrorAndRemoteControlGoesOn() async throws {
        let notAStream = uniqueStream()
        let setup = try await Connection.open(url: Broker.url)
        _ = try await setup.openChannel().declareQueue(notAStream, durable: false)
        let queue = uniqueQueue("revokelog")
        let runs = RunLog()
        let worker = try await startWorker(queue, stream: notAStream, runs: runs)
        let requester = try await PidboxRequester.open()
        let hostname = worker.worker.configuration.hostname
        let revoked = UUID().uuidString.lowercased()
        let answer = try await requester.ask(hostname, "revoke", ["task_id": .string(revoked)])
        #expect(answer["error"]?.stringValue?.contains("could not be recorded") == true, "\(answer)")
        #expect(worker.worker.state.isRevoked(revoked), "the revoke holds in the worker")
        #expect(try await requester.ask(hostname, "ping") == ["ok": "pong"], "remote control goes on")
        try await requester.close()
        try await worker.stop()
        _ = try await setup.openChannel().deleteQueue(notAStream)
        await setup.close()
    }

    /// The wait for the stream's confirm is bounded: a recording that never answers (here one that ignores
    /// cancellation and would answer after 30 s, as a blocked connection would) gives way to `TimedOut` at the limit,
    /// so the revoke's reply, and the pidbox requests after it, do not wait for it.
    @Test func aRecordingThatDoesNotAnswerIsCutAtItsLimit() async throws {
        await #expect(throws: BoundedWait.TimedOut.self) {
            try await BoundedWait.run(within: .milliseconds(200)) { () async throws -> Bool in
                await Task.detached { try? await Task.sleep(for: .seconds(30)) }.value
                return true
            }
        }
        #expect(try await BoundedWait.run(within: .seconds(30)) { 42 } == 42, "an answer within the limit is returned")
    }

    @Test func aRevokeRecordedBeforeAWorkerStartsHoldsInIt() async throws {
        let stream = uniqueStream()
        let queue = uniqueQueue("revokelog")
        let revoked = UUID().uuidString.lowercased()
        let connection = try await Connection.open(url: Broker.url)
        try await RevokeLog.record([revoked], in: stream, on: connection)
        await connection.close()

        let runs = RunLog()
        let worker = try await startWorker(queue, stream: stream, runs: runs)
        #expect(worker.worker.state.isRevoked(revoked), "read from the stream before the worker took a task")
        let marker = try await sendRevokedThenMarker(revoked, to: queue, runs: runs)
        #expect(await runs.count(marker) == 1)
        #expect(await runs.count(revoked) == 0, "a revoke recorded before the worker started held in it")
        try await worker.stop()
        try await deleteStream(stream)
    }

    @Test func aRevokeFromCeleryControlOutlivesTheWorkerThatObeyedIt() async throws {
        let stream = uniqueStream()
        let queue = uniqueQueue("revokelog")
        let revoked = UUID().uuidString.lowercased()
        let runs = RunLog()
        let first = try await startWorker(queue, stream: stream, runs: runs)
        let requester = try await PidboxRequester.open()
        _ = try await requester.ask(first.worker.configuration.hostname, "revoke", ["task_id": .string(revoked)])
        try await requester.close()
        try await first.stop()

        let second = try await startWorker(queue, stream: stream, runs: runs)
        #expect(second.worker.state.isRevoked(revoked), "the restarted worker read the revoke back")
        let marker = try await sendRevokedThenMarker(revoked, to: queue, runs: runs)
        #expect(await runs.count(marker) == 1)
        #expect(await runs.count(revoked) == 0)
        try await second.stop()
        try await deleteStream(stream)
    }

    @Test func whatIsNotARevokeInTheStreamIsSkippedAndTheWorkerGoesOn() async throws {
        let stream = uniqueStream()
        let queue = uniqueQueue("revokelog")
        let revoked = UUID().uuidString.lowercased()
        try await writeStream(stream) { channel in
            let garbage = [
                "not json", "[1, 2]", "{}", #"{"task_ids": "one"}"#, #"{"task_ids": [1], "revoked_at": 1}"#,
                #"{"task_ids": ["x"]}"#, #"{"task_ids": ["y"], "revoked_at": "yesterday"}"#, String(repeating: "{", count: 100_000),
            ]
            for body in garbage { try await channel.publish(Data(body.utf8), routingKey: stream) }
            try await RevokeLog.append([revoked], to: stream, on: channel)
        }

        let runs = RunLog()
        let worker = try await startWorker(queue, stream: stream, runs: runs)
        #expect(worker.worker.state.isRevoked(revoked), "the valid entry after the garbage was read")
        #expect(!worker.worker.state.isRevoked("x") && !worker.worker.state.isRevoked("y"))
        let marker = try await sendRevokedThenMarker(revoked, to: queue, runs: runs)
        #expect(await runs.count(marker) == 1, "the worker takes tasks after skipping what was not a revoke")
        #expect(await runs.count(revoked) == 0)
        try await worker.stop()
        try await deleteStream(stream)
    }

    /// An entry dated in the future (a writer whose clock is ahead, or anyone who may publish to the stream) must
    /// not make the worker forget the revokes read before it: the revoked set expires by time, and a "now" hours
    /// ahead would expire all of them at once.
    @Test func anEntryDatedInTheFutureForgetsNoEarlierRevoke() async throws {
        let stream = uniqueStream()
        let queue = uniqueQueue("revokelog")
        let revoked = UUID().uuidString.lowercased()
        try await writeStream(stream) { channel in
            try await RevokeLog.append([revoked], to: stream, on: channel)
            let fourHoursAhead = Date().addingTimeInterval(RevokeLog.lifetime.secondsValue + 3600)
            try await RevokeLog.append(["from-the-future"], to: stream, at: fourHoursAhead, on: channel)
        }

        let runs = RunLog()
        let worker = try await startWorker(queue, stream: stream, runs: runs)
        #expect(worker.worker.state.isRevoked("from-the-future"), "the entry itself holds")
        #expect(worker.worker.state.isRevoked(revoked), "the revoke before the future-dated entry still holds")
        let marker = try await sendRevokedThenMarker(revoked, to: queue, runs: runs)
        #expect(await runs.count(marker) == 1)
        #expect(await runs.count(revoked) == 0, "the task revoked before the future-dated entry did not run")
        try await worker.stop()
        try await deleteStream(stream)
    }

    /// A reader that may read the stream but not write its marker (a user without the write permission): lasting
    /// revokes are off on that connection, and the stream's consumer it had started must not stay behind, holding
    /// up to its prefetch of entries unacknowledged for as long as the connection lasts.
    @Test func aReaderThatCannotWriteItsMarkerLeavesNoConsumerBehind() async throws {
        let stream = uniqueStream()
        try Self.makeReadOnlyUser()
        let setup = try await Connection.open(url: Broker.url)
        try await RevokeLog.record(["one"], in: stream, on: setup)
        let reader = try await Connection.open(url: "amqp://\(Self.readOnlyUser):\(Self.readOnlyUser)-password@127.0.0.1:\(Broker.port)/%2f")
        let follower = RevokeLogFollower(
            stream: stream, instance: UUID().uuidString, state: WorkerState(), logger: Logger(label: "test.revokes"))
        let reading = try await follower.start(on: reader)
        #expect(reading == nil, "the marker could not be written")
        #expect(reader.isOpen)
        // A stream's queue.declare-ok always says 0 consumers (so a passive declare cannot count them, as it does for
        // SystemdNotifyTests' classic queue), and list_consumers leaves stream consumers out: count the consumers on
        // the reader's channels (this user's connection is the reader's only). A failed listing must fail the test,
        // not read as "no consumers".
        let (status, channels) = try Broker.ctl(["list_channels", "user", "consumer_count", "--quiet", "--no-table-headers"])
        #expect(status == 0, "rabbitmqctl list_channels failed: \(channels)")
        var consumers = 0
        for line in channels.split(separator: "\n") {
            let fields = line.split(separator: "\t").map(String.init)
            if fields.count == 2, fields[0] == Self.readOnlyUser { consumers += Int(fields[1]) ?? 0 }
        }
        #expect(consumers == 0, "no consumer of the stream left behind: \(channels)")
        await reader.close()
        await setup.close()
        try await deleteStream(stream)
    }

    static let readOnlyUser = "review-revokes-reader"

    /// A user that may configure and read everything on `/` but write nothing, made with `Deploy/broker ctl`.
    static func makeReadOnlyUser() throws {
        let (added, addText) = try Broker.ctl(["add_user", readOnlyUser, "\(readOnlyUser)-password"])
        if added != 0, !addText.contains("already exists") { throw TestFailure("add_user \(readOnlyUser): \(addText)") }
        let (permitted, permitText) = try Broker.ctl(["set_permissions", "-p", "/", readOnlyUser, ".*", "^$", ".*"])
        if permitted != 0 { throw TestFailure("set_permissions \(readOnlyUser): \(permitText)") }
    }

    @Test func anEntryRoundTripsAndItsTimeCountsFromTheRevoke() throws {
        let entry = RevokeLog.Entry(taskIDs: ["a", "b"], revokedAt: Date(timeIntervalSince1970: 1_000), writer: "w")
        #expect(try RevokeLog.Entry.parse(entry.body).get() == entry)
        let state = WorkerState()
        state.remember(revoked: ["old"], at: Date().addingTimeInterval(-RevokeLog.lifetime.secondsValue - 1))
        state.remember(revoked: ["new"], at: Date().addingTimeInterval(-60))
        #expect(!state.isRevoked("old"), "a revoke older than its lifetime is over")
        #expect(state.isRevoked("new"))
    }
}

/// Counts the claim attempts of a `RevokeLog.recordOnce` in a test.
private actor ClaimAttempts {
    private(set) var value = 0
    /// Counts one more attempt and returns how many there were.
    func next() -> Int {
        value += 1
        return value
    }
}

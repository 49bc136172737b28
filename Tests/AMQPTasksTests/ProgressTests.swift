import AMQP
import AMQPTasks
import Foundation
import Synchronization
import Testing

@testable import AMQPTasks

/// Progress and custom states (issue 15 item 3): a handler's `updateState` / `reportProgress` and an exec command's
/// progress lines reach the caller's `TaskClient.stateUpdates(for:)` in order, before the final state.
@Suite struct ProgressTests {
    @Test func theSwiftClientSeesDemoProgressInOrderThenSuccess() async throws {
        let queue = uniqueQueue("progress")
        let worker = try await RunningWorker.start(queues: [queue], sendStarted: true)
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("demo.progress", args: [5], options: SendOptions(queue: queue))
        var states: [ResultMessage] = []
        for try await state in client.stateUpdates(for: id, timeout: .seconds(60)) { states.append(state) }
        let progress = states.filter { $0.status == .progress }
        #expect(progress.count >= 3, "states: \(states.map(\.status))")
        let currents = progress.compactMap { $0.result["current"]?.intValue }
        #expect(currents == currents.sorted() && Set(currents).count == currents.count, "in order: \(currents)")
        #expect(progress.allSatisfy { $0.result["total"] == 5 })
        #expect(progress.last?.result["current"] == 5, "the last report is never coalesced away")
        #expect(states.first?.status == .started)
        #expect(states.last?.status == .success)
        #expect(states.last?.result == 5)
        #expect(states.dropLast().allSatisfy { !$0.status.isFinal })
        // The stream leaves the result with the client: waiting for it afterwards still works.
        #expect(try await client.value(for: id, timeout: .seconds(5)) == 5)
        try await worker.stop()
        await client.close()
    }

    /// A handler that reports in a tight loop costs one publish per round trip, not one per call, and its last report
    /// still arrives, before SUCCESS.
    @Test func aFloodOfReportsIsCoalescedAndTheLatestWins() async throws {
        let queue = uniqueQueue("progress-flood")
        let reports = 10_000
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("test.flood") { context in
                for i in 1...reports { context.reportProgress(current: i, total: reports) }
                return "done"
            }
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("test.flood", options: SendOptions(queue: queue))
        var states: [ResultMessage] = []
        for try await state in client.stateUpdates(for: id, timeout: .seconds(60)) { states.append(state) }
        let currents = states.filter { $0.status == .progress }.compactMap { $0.result["current"]?.intValue }
        #expect(currents.count < reports, "coalesced: \(currents.count) of \(reports) reports were sent")
        #expect(currents == currents.sorted() && Set(currents).count == currents.count)
        #expect(currents.last == reports)
        #expect(states.last?.status == .success)
        try await worker.stop()
        await client.close()
    }

    /// `updateState` refuses a final state (only the outcome may end a task); a task without a caller to tell
    /// reports into nothing, without error.
    @Test func updateStateRefusesFinalStatesAndIsANoOpWithoutACaller() throws {
        let context = TaskContext(message: TaskMessage(id: "t1", name: "x"))
        let error = #expect(throws: FinalStateReported.self) { try context.updateState(.success, meta: 1) }
        #expect(error?.description.contains("return a value") == true)
        try context.updateState("STAGE", meta: ["step": "b"])
        context.reportProgress(current: 1, total: 2)
    }

    /// An exec command's progress lines on `AMQP_TASKS_PROGRESS_FD`: a meta object is PROGRESS, `{"state", "meta"}`
    /// a custom state; malformed lines (not JSON, not an object, a final state, an empty state, a 70 KB line) are
    /// ignored without failing or stalling the task. The command waits for the test to see each state before writing
    /// the next (files `go1`, `go2`), so coalescing cannot merge them and the order is exact.
    @Test func execProgressLinesReachTheCallerAndMalformedOnesAreIgnored() async throws {
        let queue = uniqueQueue("exec-progress")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("progress-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = """
            fd=$AMQP_TASKS_PROGRESS_FD
            [ "$fd" = 3 ] || exit 9
            echo '{"current": 1, "total": 3}' >&3
            while [ ! -e \(folder.path)/go1 ]; do sleep 0.05; done
            echo 'not json' >&3
            echo '[1, 2]' >&3
            echo '{"state": "SUCCESS", "meta": 1}' >&3
            echo '{"state": ""}' >&3
            head -c 70000 /dev/zero | tr '\\0' x >&3; echo >&3
            echo '{"state": "STAGE", "meta": {"step": "b"}}' >&3
            while [ ! -e \(folder.path)/go2 ]; do sleep 0.05; done
            printf '{"current": 3, "total": 3}' >&3
            echo 42
            """
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("exec.progress", ExecHandler(command: ["/bin/sh", "-c", script]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("exec.progress", options: SendOptions(queue: queue))
        var states: [ResultMessage] = []
        for try await state in client.stateUpdates(for: id, timeout: .seconds(60)) {
            states.append(state)
            if state.status == .progress, state.result["current"] == 1 {
                FileManager.default.createFile(atPath: folder.appendingPathComponent("go1").path, contents: nil)
            }
            if state.status == "STAGE" {
                FileManager.default.createFile(atPath: folder.appendingPathComponent("go2").path, contents: nil)
            }
        }
        #expect(states.map(\.status) == [.progress, "STAGE", .progress, .success], "\(states.map { "\($0.status) \($0.result)" })")
        #expect(states.map(\.result) == [["current": 1, "total": 3], ["step": "b"], ["current": 3, "total": 3], 42])
        try await worker.stop()
        await client.close()
    }

    /// Progress is best effort: a caller whose reply queue is gone (states come back unroutable) costs the task
    /// nothing; it still succeeds and is recorded.
    @Test func progressToAReplyQueueThatIsGoneNeverFailsTheTask() async throws {
        let queue = uniqueQueue("progress-gone")
        let outcomes = OutcomeLog()
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("test.report") { context in
                    for i in 1...200 {
                        context.reportProgress(current: i, total: 200)
                        if i % 20 == 0 { try await Task.sleep(for: .milliseconds(5)) }
                    }
                    return "ok"
                }
            }, middleware: [outcomes])
        var message = TaskMessage(name: "test.report")
        message.replyTo = "gone.\(UUID().uuidString)"
        let (properties, body) = message.encode()
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.publish(OutgoingMessage(body: body, routingKey: queue, properties: properties))
        let outcome = try await outcomes.first(for: message.id)
        guard case .succeeded(let value, _) = outcome else {
            Issue.record("expected SUCCESS, got \(outcome)")
            return
        }
        #expect(value == "ok")
        await connection.close()
        try await worker.stop()
    }

    @Test func progressLinesAreBoundedAndSplitOnNewlines() {
        var lines = ProgressLines(maxLine: 8)
        #expect(lines.feed(Array("{\"a\":1}\n{\"b\"".utf8)) == [.line(Data("{\"a\":1}".utf8))])
        #expect(lines.feed(Array(":2}\n\n  \n".utf8)) == [.line(Data("{\"b\":2}".utf8))])
        #expect(lines.feed(Array("0123456789".utf8)).isEmpty)
        #expect(lines.feed(Array("ab\nok\n".utf8)) == [.tooLong(bytes: 12), .line(Data("ok".utf8))])
        #expect(lines.feed(Array("tail".utf8)).isEmpty)
        #expect(lines.finish() == .line(Data("tail".utf8)))
        #expect(lines.finish() == nil)
    }

    @Test func progressLineFormats() throws {
        func parse(_ text: String) -> Result<(TaskState, JSONValue), ProgressLineError> { ProgressLine.parse(Data(text.utf8)) }
        let plain = try parse(#"{"current": 1, "total": 2}"#).get()
        #expect(plain.0 == .progress && plain.1 == ["current": 1, "total": 2])
        let custom = try parse(#"{"state": "STAGE", "meta": {"x": 1}}"#).get()
        #expect(custom.0 == "STAGE" && custom.1 == ["x": 1])
        for bad in ["nope", "[1]", #"{"state": 3}"#, #"{"state": ""}"#, #"{"state": "FAILURE"}"#] {
            #expect(throws: ProgressLineError.self, "\(bad)") { try parse(bad).get() }
        }
    }

    /// Custom states decode (Celery's update_state body) instead of being refused as unknown.
    @Test func aCustomStateDecodes() throws {
        let body = #"{"status": "PROGRESS", "result": {"current": 2, "total": 5}, "traceback": null, "children": [], "date_done": null, "task_id": "abc"}"#
        let message = try ResultMessage.decode(body: Data(body.utf8))
        #expect(message.status == .progress && message.status.isCustom && !message.status.isFinal)
        #expect(message.json == (try JSONValue.parse(Data(body.utf8))))
    }
}

/// The state streams of `ResultRouter` (without a worker): history then live states, the end after a final state,
/// the timeout, a closing client, and the per-task bound on kept states.
@Suite struct StateUpdatesRouterTests {
    @Test func aStreamGetsTheStatesSoFarThenEachNewOneAndEndsAfterTheFinal() async throws {
        let router = ResultRouter()
        await router.deliver(ResultMessage(taskId: "t", status: .started))
        await router.deliver(ResultMessage(taskId: "t", status: .progress, result: ["current": 1]))
        let (stream, continuation) = AsyncThrowingStream<ResultMessage, Error>.makeStream()
        await router.watch("t", timeout: .seconds(30), stream: continuation)
        await router.deliver(ResultMessage(taskId: "t", status: "CUSTOM", result: "x"))
        await router.deliver(.success("t", 7))
        await router.deliver(ResultMessage(taskId: "t", status: .progress, result: ["current": 2]))
        var seen: [TaskState] = []
        for try await state in stream { seen.append(state.status) }
        #expect(seen == [.started, .progress, "CUSTOM", .success], "ends at the final state; nothing after it")
        #expect(try await router.final(for: "t", timeout: .seconds(1)).final.result == 7, "the result stays for result(for:)")
    }

    @Test func aStreamOfAFinishedTaskGetsItsStatesAndEnds() async throws {
        let router = ResultRouter()
        await router.deliver(ResultMessage(taskId: "f", status: .progress))
        await router.deliver(.success("f", 1))
        let (stream, continuation) = AsyncThrowingStream<ResultMessage, Error>.makeStream()
        await router.watch("f", timeout: .seconds(30), stream: continuation)
        var seen: [TaskState] = []
        for try await state in stream { seen.append(state.status) }
        #expect(seen == [.progress, .success])
    }

    @Test func aStreamWithoutAFinalStateTimesOutAndOneOfAClosingClientFails() async throws {
        let router = ResultRouter()
        let (quiet, quietContinuation) = AsyncThrowingStream<ResultMessage, Error>.makeStream()
        await router.watch("never", timeout: .milliseconds(200), stream: quietContinuation)
        let timeout = await #expect(throws: TaskClientError.self) { for try await _ in quiet {} }
        #expect(timeout?.code == .timedOut)
        let (closing, closingContinuation) = AsyncThrowingStream<ResultMessage, Error>.makeStream()
        await router.watch("other", timeout: .seconds(60), stream: closingContinuation)
        await router.failAll(TaskClientError.clientClosed("result"))
        let closed = await #expect(throws: TaskClientError.self) { for try await _ in closing {} }
        #expect(closed?.code == .closed)
    }

    /// A caller that reads slowly while a long task reports progress: what waits in its stream is bounded (the
    /// latest states and the final one), not every state the task ever sent.
    @Test func aSlowReaderOfStateUpdatesHoldsOnlyTheLatestStates() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let updates = client.stateUpdates(for: "slow", timeout: .seconds(60))
        var states = updates.makeAsyncIterator()
        await client.router.deliver(ResultMessage(taskId: "slow", status: .progress, result: .int(0)))
        #expect(try await states.next()?.result == 0, "the stream is being fed")
        for i in 1...1000 { await client.router.deliver(ResultMessage(taskId: "slow", status: .progress, result: .int(i))) }
        await client.router.deliver(.success("slow", "done"))
        var waiting: [ResultMessage] = []
        while let state = try await states.next() { waiting.append(state) }
        #expect(waiting.count <= ResultCache.maxHistory + 1, "\(waiting.count) states waited in the stream")
        #expect(waiting.last?.status == .success && waiting.last?.result == "done", "the final state is never dropped")
        #expect(waiting.dropLast().last?.result == 1000, "the latest progress is kept")
        await client.close()
    }

    @Test func aTaskKeepsAtMostTheLatestHundredStates() async throws {
        let router = ResultRouter()
        for i in 1...250 { await router.deliver(ResultMessage(taskId: "busy", status: .progress, result: .int(i))) }
        let history = await router.history(of: "busy")
        #expect(history.count == ResultCache.maxHistory)
        #expect(history.last?.result == 250 && history.first?.result == 151)
    }
}

/// Records the outcome of every task a worker ran.
final class OutcomeLog: TaskMiddleware, Sendable {
    private let outcomes = Mutex<[String: TaskOutcome]>([:])

    func recorded(_ outcome: TaskOutcome, of task: TaskContext) async {
        outcomes.withLock { $0[task.taskId] = outcome }
    }

    /// Waits for the outcome of `id` (a 60 s safety net only).
    func first(for id: String) async throws -> TaskOutcome {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let outcome = outcomes.withLock({ $0[id] }) { return outcome }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("no outcome recorded for \(id)")
    }
}

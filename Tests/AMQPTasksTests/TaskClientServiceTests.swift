@testable import AMQPTasks
import Foundation
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// A `TaskClient` as a swift-service-lifecycle service, against the local broker and an in-process worker: it
/// serves until graceful shutdown, then closes; `close()` returns only once its result receiver has ended.
@Suite struct TaskClientServiceTests {
    @Test func aClientInAServiceGroupServesUntilGracefulShutdownThenCloses() async throws {
        let queue = uniqueQueue("service")
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(url: Broker.url)
        let group = ServiceGroup(services: [client], logger: Logger(label: "test.service-group"))
        try await testGracefulShutdown { shutdown in
            let running = Task { try await group.run() }
            let id = try await client.send("demo.add", args: [2, 3], options: SendOptions(queue: queue))
            #expect(try await client.value(for: id, timeout: .seconds(30)) == 5)
            #expect(client.receivers.runningCount == 1, "the result receiver runs while the service does")
            let waiting = Task { try await client.result(for: "never-sent", timeout: .seconds(120)) }
            try await waitUntil("the result wait is registered") { await client.waitingResultCount == 1 }
            shutdown.triggerGracefulShutdown()
            try await running.value  // run() returned: the group ends only when its service did
            #expect(client.receivers.runningCount == 0, "closed: the receiver ended")
            let pending = await #expect(throws: TaskClientError.self) { _ = try await waiting.value }
            #expect(pending?.code == .closed, "a pending wait fails as closed, it does not hang")
            let later = await #expect(throws: TaskClientError.self) {
                try await client.send("demo.add", options: SendOptions(queue: queue))
            }
            #expect(later?.code == .closed)
        }
        try await worker.stop()
    }

    @Test func closeReturnsOnlyOnceTheResultReceiverHasEndedAndEndsRun() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        #expect(client.receivers.runningCount == 1)
        // A receiver that lost its connection waits out a reconnect backoff (up to `maxDelay`) before it tries
        // again: close() must end that wait too, not return while it sleeps.
        client.receivers.start { try? await Task.sleep(for: .seconds(600)) }
        let running = Task { try await client.run() }
        let waiting = Task { try await client.result(for: "never-sent", timeout: .seconds(120)) }
        try await waitUntil("the result wait is registered") { await client.waitingResultCount == 1 }
        await client.close()
        #expect(client.receivers.runningCount == 0, "close() returned with its receiver still running")
        let pending = await #expect(throws: TaskClientError.self) { _ = try await waiting.value }
        #expect(pending?.code == .closed)
        try await running.value  // run() returns once the client is closed
        await client.close()  // closing again does nothing more
    }

    @Test func cancellingRunClosesTheClient() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let running = Task { try await client.run() }
        try await waitUntil("run() waits for the close") { await client.isWaitingForClose }
        running.cancel()
        try await running.value
        #expect(client.receivers.runningCount == 0)
        await #expect(throws: TaskClientError.self) { try await client.send("demo.add") }
    }

    /// Polls `condition` (a safety net of 10 s, not a measure of anything).
    func waitUntil(_ what: String, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while await !condition() {
            guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// The client's receiver tasks without a broker: `stopAll()` cancels them and returns once each has ended.
@Suite struct ResultReceiversTests {
    @Test func stopAllCancelsAndAwaitsEveryReceiver() async {
        let receivers = ResultReceivers()
        let ended = EndCounter()
        for _ in 0..<3 {
            receivers.start {
                try? await Task.sleep(for: .seconds(600))
                await ended.add()
            }
        }
        #expect(receivers.runningCount == 3)
        await receivers.stopAll()
        #expect(receivers.runningCount == 0)
        #expect(await ended.count == 3, "each body ran to its end before stopAll returned")
    }

    actor EndCounter {
        private(set) var count = 0
        func add() { count += 1 }
    }
}

extension ResultReceiversTests {
    @Test func nothingStartsAfterStopAll() async {
        let receivers = ResultReceivers()
        await receivers.stopAll()
        receivers.start { try? await Task.sleep(for: .seconds(600)) }
        #expect(receivers.runningCount == 0, "a receiver of a connection opened while closing is not started")
    }
}

@testable import AMQPTasks
import Foundation
import Synchronization
import Testing

/// Matching results to their waiters and keeping the rest, without a broker: a result before its waiter, two
/// waiters, copies dropped, the limits evicting the oldest, and `failAll`.
@Suite struct ResultRouterTests {
    /// A clock the test moves by hand.
    final class ManualClock: Sendable {
        private let time = Mutex(Date(timeIntervalSince1970: 1_000_000))
        var now: Date { time.withLock { $0 } }
        func advance(by seconds: Double) { time.withLock { $0 += seconds } }
    }

    /// Waits until `count` callers wait on `router` (a safety-net deadline only; the test counts its own waiters).
    func waitForWaiters(_ count: Int, on router: ResultRouter) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while await router.waitingCount < count {
            guard ContinuousClock.now < deadline else { throw TestFailure("only \(await router.waitingCount) of \(count) waiters") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    @Test func aResultThatArrivesBeforeItsWaiterIsHandedOutThenForgotten() async throws {
        let router = ResultRouter()
        await router.expect(["a"])
        await router.deliver(.success("a", 1))
        #expect(await router.unclaimedCount == 1)
        let outcome = try await router.final(for: "a", timeout: .seconds(10))
        #expect(outcome.final.result == .int(1))
        #expect(await router.unclaimedCount == 0, "taken: not kept for nobody")
        await router.deliver(.success("a", 1))
        #expect(await router.unclaimedCount == 0, "a later copy of a taken result is dropped")
    }

    @Test func twoWaitersForOneTaskBothGetItsResult() async throws {
        let router = ResultRouter()
        let first = Task { try await router.final(for: "t", timeout: .seconds(30)) }
        let second = Task { try await router.final(for: "t", timeout: .seconds(30)) }
        try await waitForWaiters(2, on: router)
        await router.deliver(ResultMessage(taskId: "t", status: .started))
        #expect(await router.waitingCount == 2, "a STARTED state is not final")
        await router.deliver(.success("t", "done"))
        #expect(try await first.value.final.result == "done")
        #expect(try await second.value.final.result == "done")
        #expect(try await first.value.history.map(\.status) == [.started, .success])
        #expect(await router.waitingCount == 0)
    }

    @Test func aRedeliveredCopyOfAStoredFinalResultIsDropped() async throws {
        let router = ResultRouter()
        await router.deliver(ResultMessage(taskId: "r", status: .started))
        await router.deliver(.success("r", 1))
        await router.deliver(.success("r", 1), redelivered: true)
        #expect(await router.history(of: "r").map(\.status) == [.started, .success], "the copy left no trace")
        let states = try await router.final(for: "r", timeout: .seconds(10), keep: true)
        #expect(states.history.count == 2)
        #expect(await router.unclaimedCount == 1, "kept: states(for:) does not take it")
    }

    @Test func theOldestResultsOfEachKindAreEvictedFirst() async throws {
        let router = ResultRouter(limits: ResultCacheLimits(maxResults: 3, maxUnexpectedResults: 2))
        let sent = (0..<5).map { "sent-\($0)" }
        await router.expect(sent)
        for (n, id) in sent.enumerated() { await router.deliver(.success(id, .int(n))) }
        #expect(await router.unclaimedCount == 3)
        #expect(await router.droppedCount == 2)
        // A flood of results nobody here sent does not push out the ones this client's callers will ask for.
        for n in 0..<10 { await router.deliver(.success("foreign-\(n)", .int(n))) }
        #expect(await router.unclaimedCount == 5)
        #expect(await router.droppedCount == 10)
        for id in sent.suffix(3) { #expect(try await router.final(for: id, timeout: .seconds(10)).final.taskId == id) }
        for id in ["sent-0", "sent-1", "foreign-7"] {
            let error = await #expect(throws: TaskClientError.self, "\(id) was evicted") {
                _ = try await router.final(for: id, timeout: .milliseconds(1))
            }
            #expect(error?.code == .timedOut)
            #expect(error?.taskId == id)
        }
        #expect(try await router.final(for: "foreign-9", timeout: .seconds(10)).final.result == .int(9))
    }

    @Test func resultsOlderThanMaxAgeAreEvicted() async throws {
        let clock = ManualClock()
        let router = ResultRouter(limits: ResultCacheLimits(maxAge: .seconds(60)), now: { clock.now })
        await router.deliver(.success("old", 1))
        clock.advance(by: 59)
        #expect(await router.history(of: "old").count == 1)
        clock.advance(by: 1)
        #expect(await router.history(of: "old").isEmpty, "too old to hand out")
        await router.deliver(.success("new", 2))
        #expect(await router.droppedCount == 1)
        #expect(await router.unclaimedCount == 1)
    }

    @Test func failAllEndsEveryWaitAndEveryLaterWait() async throws {
        let router = ResultRouter()
        let waits = (0..<3).map { n in Task { try await router.final(for: "w\(n % 2)", timeout: .seconds(60)) } }
        try await waitForWaiters(3, on: router)
        await router.failAll(TaskClientError.clientClosed("result"))
        for wait in waits {
            let error = await #expect(throws: TaskClientError.self) { _ = try await wait.value }
            #expect(error?.code == .closed)
        }
        await #expect(throws: TaskClientError.self, "a wait after failAll fails at once") {
            _ = try await router.final(for: "later", timeout: .seconds(60))
        }
        #expect(await router.waitingCount == 0)
    }

    @Test func aWaitEndsWithTimedOutNamingTheTask() async throws {
        let router = ResultRouter()
        do {
            _ = try await router.final(for: "slow", timeout: .milliseconds(5))
            Issue.record("no result was delivered, yet the wait returned")
        } catch TaskClientError.timedOut {
            // `catch TaskClientError.code` matches by the code.
        }
        let error = await #expect(throws: TaskClientError.self) {
            _ = try await router.final(for: "slow", timeout: .milliseconds(5))
        }
        #expect(error?.timeout == .milliseconds(5))
        #expect(error?.description.contains("slow") == true)
    }
}

@testable import AMQPTasks
import Foundation
import Synchronization
import Testing

/// The pure parts of time limits, without a broker: the soft limit through the in-memory pipeline
/// (`TaskTestRunner`), `HandlerSignals`, and `HandlerRun` with its watchdog (abandoned handlers counted, a late
/// result dropped, the restart policy).
@Suite struct TimeLimitPipelineTests {
    static func registry() throws -> TaskRegistry {
        var registry = TaskRegistry()
        try registry.register("soft.catches") { task in
            do {
                try await Task.sleep(for: .seconds(3600))
                return "slept"
            } catch where task.softTimeLimitExceeded {
                return "cleaned up"
            }
        }
        try registry.register("soft.escapes") { _ in
            try await Task.sleep(for: .seconds(3600))
            return "slept"
        }
        try registry.register("soft.checks") { task in
            // Never awaits: only checkSoftTimeLimit() can stop it.
            var spins = 0
            while true {
                try task.checkSoftTimeLimit()
                spins &+= 1
            }
        }
        return registry
    }

    static func message(_ name: String, soft: Duration?, hard: Duration? = .seconds(60)) -> TaskMessage {
        var message = TaskMessage(name: name)
        message.replyTo = TaskTestRunner.replyQueue
        message.timeLimit = .init(hard: hard, soft: soft)
        return message
    }

    static func failure(of report: TaskTestReport) -> TaskFailure? {
        guard case .failed(let failure, _) = report.outcome else { return nil }
        return failure
    }

    @Test func aHandlerThatCatchesTheSoftLimitSucceedsWithItsOwnResult() async throws {
        let report = try await TaskTestRunner(registry: try Self.registry())
            .run(Self.message("soft.catches", soft: .milliseconds(200)))
        #expect(report.result == "cleaned up")
        #expect(report.results.map(\.status) == [.success])
    }

    @Test func aSoftLimitThatEscapesIsCelerysSoftTimeLimitExceeded() async throws {
        let report = try await TaskTestRunner(registry: try Self.registry())
            .run(Self.message("soft.escapes", soft: .milliseconds(200)))
        let failure = try #require(Self.failure(of: report), "got \(String(describing: report.outcome))")
        #expect(failure == TaskFailure(type: "SoftTimeLimitExceeded", message: "0.2", module: "billiard.exceptions"))
    }

    @Test func checkSoftTimeLimitStopsALoopThatNeverAwaits() async throws {
        let report = try await TaskTestRunner(registry: try Self.registry())
            .run(Self.message("soft.checks", soft: .milliseconds(200)))
        #expect(Self.failure(of: report)?.type == "SoftTimeLimitExceeded")
    }

    @Test func theConfiguredSoftTimeLimitAppliesWhenTheTaskAsksForNone() async throws {
        var configuration = WorkerConfiguration()
        configuration.tasks["soft.catches"] = TaskSettings(softTimeLimit: .milliseconds(200))
        let report = try await TaskTestRunner(registry: try Self.registry(), configuration: configuration)
            .run(Self.message("soft.catches", soft: nil))
        #expect(report.result == "cleaned up")
    }

    @Test func theTasksOwnSoftLimitComesBeforeTheConfiguredOneAndZeroIsNone() {
        var message = TaskMessage(name: "x")
        #expect(message.softTimeLimit(configured: .seconds(5)) == .seconds(5))
        message.timeLimit.soft = .seconds(2)
        #expect(message.softTimeLimit(configured: .seconds(5)) == .seconds(2))
        message.timeLimit.soft = .zero
        #expect(message.softTimeLimit(configured: .seconds(5)) == nil)
    }

    /// A middleware sees the soft limit as `SoftTimeLimitExceeded`, never as the `CancellationError` that means the
    /// worker is stopping (which a middleware must let through).
    @Test func middlewareSeesSoftTimeLimitExceededNotACancellation() async throws {
        final class Seen: TaskMiddleware {
            let errors = Mutex<[String]>([])
            func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws
                -> JSONValue
            {
                do { return try await next(task) } catch {
                    errors.withLock { $0.append("\(type(of: error))") }
                    throw error
                }
            }
        }
        let seen = Seen()
        let report = try await TaskTestRunner(registry: try Self.registry(), middleware: [seen])
            .run(Self.message("soft.escapes", soft: .milliseconds(200)))
        #expect(Self.failure(of: report)?.type == "SoftTimeLimitExceeded")
        #expect(seen.errors.withLock { $0 } == ["SoftTimeLimitExceeded"])
    }

    /// The README's example ("Time limits"), as written there.
    @Test func theReadmeExampleAnswersWithWhatItDidAtTheSoftLimit() async throws {
        typealias Row = Int
        let pageCount = 1_000
        @Sendable func fetchRows(page: Int) async throws -> [Row] {
            try await Task.sleep(for: .milliseconds(20))
            return [page]
        }
        @Sendable func saveCheckpoint(_ rows: [Row]) async throws {}
        var registry = TaskRegistry()
        try registry.register("reports.build") { task in
            var rows: [Row] = []
            do {
                for page in 1...pageCount {
                    try task.checkSoftTimeLimit()  // for work that does not await
                    rows += try await fetchRows(page: page)  // throws CancellationError at the soft limit
                }
                return ["partial": false, "rows": .int(rows.count)]
            } catch where task.softTimeLimitExceeded {
                try? await saveCheckpoint(rows)  // the task stays cancelled: keep cleanup short
                return ["partial": true, "rows": .int(rows.count)]  // SUCCESS, with what was done
            }
        }
        let report = try await TaskTestRunner(registry: registry).run(Self.message("reports.build", soft: .milliseconds(200)))
        #expect(report.result?.objectValue?["partial"] == true, "\(String(describing: report.outcome))")
    }

    @Test func maxAbandonedHandlersIsReadFromTheWorkerSection() throws {
        let parsed = try TasksConfiguration.parse("[worker]\nmax_abandoned_handlers = 0\n", file: "t.toml", environment: [:])
        #expect(parsed.worker.maxAbandonedHandlers == 0)
        #expect(WorkerConfiguration().maxAbandonedHandlers == 2)
        let error = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse("[worker]\nmax_abandoned_handlers = -1\n", file: "t.toml", environment: [:])
        }
        #expect(error?.description.contains("max_abandoned_handlers") == true, "\(String(describing: error))")
    }

    @Test func signalsReachAnObserverThatCameLate() {
        let signals = HandlerSignals()
        signals.send(.softLimit)
        signals.send(.softLimit)
        let heard = Heard()
        let id = signals.observe { event in heard.add(event) }
        signals.send(.hardLimit)
        signals.stopObserving(id)
        signals.send(.abandoned)
        #expect(heard.all == [.softLimit, .hardLimit], "each event once, the past one replayed")
    }

    /// The hard limit decides the outcome without the handler; the handler, still running, is counted as abandoned
    /// and trips the policy; once it ends, its late result changes nothing.
    @Test func anAbandonedRunIsCountedTripsThePolicyAndItsLateResultIsDropped() async throws {
        let watchdog = HandlerWatchdog()
        let reasons = Reasons()
        watchdog.setPolicy(.init(maxAbandoned: 0) { reason in reasons.add(reason) })
        let release = TimeLimitTests.Release()
        let run = HandlerRun.start(hardLimit: .milliseconds(100), watchdog: watchdog, logger: .init(label: "test")) {
            while !release.isReleased { try? await Task.sleep(for: .milliseconds(10)) }
            return "late"
        }
        let outcome = await run.outcome
        #expect((try? outcome.get()) == nil)
        #expect((outcome.failure as? TaskFailure)?.type == "TimeLimitExceeded")
        #expect(watchdog.abandonedStillRunning == 1)
        try await BadInputTests.waitUntil("the policy tripped") { !reasons.all.isEmpty }
        #expect(reasons.all.count == 1)
        #expect(reasons.all.first?.contains("max_abandoned_handlers = 0") == true)

        release.release()
        try await BadInputTests.waitUntil("the handler ended") { watchdog.abandonedStillRunning == 0 }
        #expect(((await run.outcome).failure as? TaskFailure)?.type == "TimeLimitExceeded", "the late result is dropped")
        #expect(reasons.all.count == 1, "the policy trips once")
    }

    /// An abandoned handler that ends (this one honours cancellation) is forgotten: only those still running count
    /// against `max_abandoned_handlers`.
    @Test func anAbandonedHandlerThatEndsIsNoLongerCounted() async throws {
        let watchdog = HandlerWatchdog()
        let run = HandlerRun.start(hardLimit: .milliseconds(100), watchdog: watchdog, logger: .init(label: "test")) {
            try await Task.sleep(for: .seconds(3600))
            return "slept"
        }
        #expect(((await run.outcome).failure as? TaskFailure)?.type == "TimeLimitExceeded")
        try await BadInputTests.waitUntil("the cancelled handler ended") { watchdog.abandonedStillRunning == 0 }
    }
}

extension TimeLimitPipelineTests {
    /// A run without time limits costs the watchdog nothing (no lock, no entry: issue 17's per-task cut), yet once
    /// abandoned (`revoke --terminate`, shutdown) its still-running handler is counted as any other, until it ends.
    @Test func aRunWithoutLimitsIsWatchedOnlyOnceAbandoned() async throws {
        let watchdog = HandlerWatchdog()
        let release = TimeLimitTests.Release()
        let run = HandlerRun.start(hardLimit: nil, watchdog: watchdog, logger: .init(label: "test")) {
            while !release.isReleased { try? await Task.sleep(for: .milliseconds(10)) }
            return "late"
        }
        #expect(watchdog.registeredRuns == 0, "a run without limits is not registered")
        run.abandon()
        #expect((await run.outcome).failure is CancellationError)
        #expect(run.wasAbandoned)
        #expect(watchdog.abandonedStillRunning == 1, "the abandoned handler still runs, counted")
        release.release()
        try await BadInputTests.waitUntil("the abandoned handler ended") { watchdog.abandonedStillRunning == 0 }
        #expect(watchdog.registeredRuns == 0, "forgotten once it ended")

        let quick = HandlerRun.start(hardLimit: nil, watchdog: watchdog, logger: .init(label: "test")) { "done" }
        #expect((try? (await quick.outcome).get()) == "done")
        #expect(watchdog.registeredRuns == 0)
    }
}

/// Things a test collects from other threads.
final class Collected<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])
    func add(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
}
typealias Reasons = Collected<String>
typealias Heard = Collected<HandlerSignals.Event>

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

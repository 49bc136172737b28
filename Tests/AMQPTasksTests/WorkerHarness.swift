import AMQP
import AMQPTasks
import AMQPTasksDemo
import BrokerControl
import Foundation
import Logging
import Metrics
import Testing
import Tracing

/// The local broker that `Deploy/test` starts, and helpers to run workers in-process or as processes.
enum Broker {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let port = Int(ProcessInfo.processInfo.environment["AMQP_BROKER_PORT"] ?? "") ?? 5672
    static let url = "amqp://guest:guest@127.0.0.1:\(port)/%2f"

    /// Runs `Deploy/broker ctl` (rabbitmqctl on this test's broker); returns its status and output.
    static func ctl(_ arguments: [String]) throws -> (Int32, String) { try BrokerControl.run(arguments) }
}

func uniqueQueue(_ prefix: String = "tasks") -> String {
    "test.\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
}

/// Counts how often each task id ran, across workers.
actor RunLog {
    private(set) var runs: [String: Int] = [:]
    func record(_ id: String) { runs[id, default: 0] += 1 }
    func count(_ id: String) -> Int { runs[id] ?? 0 }
    var total: Int { runs.values.reduce(0, +) }
}

/// Holds handlers until the test opens it, so a test can look at the broker while tasks are surely running.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var arrived = 0

    func wait() async {
        arrived += 1
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func waitForWaiters(_ count: Int) async throws {
        for _ in 0..<400 where arrived < count { try await Task.sleep(for: .milliseconds(50)) }
        if arrived < count { throw TestFailure("only \(arrived) of \(count) handlers started") }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
    }
}

/// A worker running in this process until `stop()`.
struct RunningWorker {
    let worker: Worker
    let task: Task<Void, Error>

    static func start(
        queues: [String], concurrency: Int = 1, url: String = Broker.url, sendStarted: Bool = false,
        persistentResults: Bool = true, grace: Double = 5, register: (inout TaskRegistry) throws -> Void = { _ in },
        configure: (inout WorkerConfiguration) -> Void = { _ in }, middleware: [any TaskMiddleware] = [],
        metricsFactory: (any MetricsFactory)? = nil, tracer: (any Tracer)? = nil
    ) async throws -> RunningWorker {
        var registry = TaskRegistry()
        try DemoTasks.register(in: &registry)
        try register(&registry)
        var configuration = try WorkerConfiguration(url: url)
        configuration.queues = queues
        configuration.concurrency = concurrency
        configuration.sendStarted = sendStarted
        configuration.persistentResults = persistentResults
        configuration.gracePeriod = .seconds(grace)
        configuration.hostname = "test-\(UUID().uuidString.prefix(8))@harness"
        // No shared stream of lasting revokes: one test's revokes must not reach another's workers
        // (RevokeLogTests give theirs a stream of their own).
        configuration.revokeLog = nil
        configure(&configuration)
        // Per-task info lines from 10,000-task tests would drown the test output.
        var logger = Logger(label: "amqp-tasks.worker")
        logger.logLevel = .warning
        let worker = Worker(
            configuration: configuration, registry: registry, middleware: middleware, logger: logger,
            metricsFactory: metricsFactory ?? NOOPMetricsHandler.instance, tracer: tracer)
        let task = Task { try await worker.run() }
        // Wait until the queues have their consumers.
        // A queue the worker has not declared yet answers 404, which closes the channel: use a fresh one each time.
        let connection = try await Connection.open(url: url)
        for _ in 0..<100 {
            var ready = true
            for queue in queues {
                let channel = try await connection.openChannel()
                let state = try? await channel.inspectQueue(queue)
                if (state?.consumerCount ?? 0) < UInt32(concurrency) { ready = false }
                try? await channel.close()
            }
            if ready { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        await connection.close()
        return RunningWorker(worker: worker, task: task)
    }

    func stop() async throws {
        worker.stop()
        try await task.value
    }
}

/// An `amqp-worker` process, built by `swift test` beside the tests.
final class WorkerProcess: @unchecked Sendable {
    let process = Process()
    private let errors = Pipe()
    private let lock = NSLock()
    private var log = ""
    private var reachedEnd = false

    init(_ arguments: [String], includeURL: Bool = true) throws {
        let binary = Broker.repoRoot.appendingPathComponent(".build/debug/amqp-worker")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestFailure("amqp-worker is not built at \(binary.path); run swift build first")
        }
        process.executableURL = binary
        process.arguments = (includeURL ? ["--url", Broker.url] : []) + arguments
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock()
            if data.isEmpty { self.reachedEnd = true }
            self.log += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        try process.run()
    }

    var output: String {
        lock.lock()
        defer { lock.unlock() }
        return log
    }

    /// Waits until the worker's log contains `text`.
    func waitFor(_ text: String, seconds: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !output.contains(text) {
            guard Date() < deadline, process.isRunning else {
                throw TestFailure("worker log never said '\(text)'; it said:\n\(output)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to exit and returns its status.
    func exitStatus(within seconds: Double = 30) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            guard Date() < deadline else { throw TestFailure("worker did not exit within \(seconds) s") }
            try await Task.sleep(for: .milliseconds(50))
        }
        // The log is read as it comes: its last lines may still be in the pipe when the process is gone. Wait for
        // the pipe's end (a bounded wait: a child of an exec task may hold the pipe open after the worker exits).
        let drained = Date().addingTimeInterval(5)
        while !(lock.withLock { reachedEnd }) && Date() < drained {
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    deinit { if process.isRunning { process.terminate() } }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

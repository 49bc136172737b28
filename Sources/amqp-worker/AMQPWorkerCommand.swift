// amqp-worker: consumes task queues and runs tasks with Swift or exec handlers. See `amqp-worker --help`.
import AMQPTasks
import ArgumentParser
import Dispatch
import Foundation
import Logging

@main
struct AMQPWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amqp-worker",
        abstract: "Run tasks from AMQP queues, one unacknowledged task per consumer (Celery-compatible).",
        discussion: """
            SIGTERM or SIGINT starts a warm shutdown: consumers stop, running tasks get --grace seconds to \
            finish, then are requeued. Exec handlers get {"id","task","args","kwargs","retries"} on stdin; \
            stdout is the result; exit 0 = SUCCESS, 75 = retry, anything else = FAILURE.
            """)

    @Option(help: "Broker URL (default: $AMQP_URL, else the local broker).")
    var url: String = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"

    @Option(name: .customLong("queue"), help: "A queue to consume (repeatable; default: celery).")
    var queues: [String] = []

    @Option(help: "Consumers per queue.")
    var concurrency: Int = 1

    @Option(help: "Unacknowledged tasks per consumer (1 = each consumer holds only the task it runs).")
    var prefetch: UInt16 = 1

    @Option(name: .customLong("exec"), help: "NAME=COMMAND: run task NAME as a process (repeatable).")
    var execHandlers: [String] = []

    @Flag(help: "Register demo.add, demo.sleep, demo.echo, demo.fail and demo.flaky.")
    var demoTasks = false

    @Option(help: "Node name (default: amqp-worker@HOST).")
    var hostname: String?

    @Option(help: "Seconds running tasks may take to finish after SIGTERM.")
    var grace: Double = 30

    @Flag(help: "Send a STARTED state before each task (Celery's task_track_started).")
    var sendStarted = false

    @Option(help: "Retries before a task that asks for more fails.")
    var maxRetries: Int = 3

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard prefetch >= 1 else { throw ValidationError("--prefetch must be at least 1") }
        guard demoTasks || !execHandlers.isEmpty else {
            throw ValidationError("no tasks to run: give --exec NAME=COMMAND or --demo-tasks")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var registry = TaskRegistry()
        if demoTasks { DemoTasks.register(in: &registry) }
        for spec in execHandlers {
            let (name, handler) = try ExecHandler.parse(spec)
            registry.register(name, handler)
        }
        var configuration = WorkerConfiguration(url: url)
        configuration.queues = queues.isEmpty ? ["celery"] : queues
        configuration.concurrency = concurrency
        configuration.prefetch = prefetch
        if let hostname { configuration.hostname = hostname }
        configuration.gracePeriod = grace
        configuration.sendStarted = sendStarted
        configuration.retryPolicy.maxRetries = maxRetries
        let worker = Worker(configuration: configuration, registry: registry)

        let logger = Logger(label: "amqp-worker")
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber)
            source.setEventHandler {
                logger.notice("signal \(signalNumber): warm shutdown (grace \(grace) s)")
                worker.stop()
            }
            source.resume()
            sources.append(source)
        }
        try await worker.run()
        withExtendedLifetime(sources) {}
    }
}

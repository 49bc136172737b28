// A Swift worker run as a service with one middleware: the README's example, kept compiling and tested
// (Tests/InteropTests/test_examples.py). The broker URL comes from AMQP_URL; it consumes the queue named by the
// first argument (default: celery). SIGTERM or SIGINT stops it gracefully.
import AMQPTasks
import AMQPTasksDemo
import Foundation
import Logging
import ServiceLifecycle

/// Refuses `admin.` tasks that carry no token (they go to `<queue>.dead` with reason `unauthorised`), and says in
/// the log how each task ended.
struct Guard: TaskMiddleware {
    func willRun(_ task: TaskContext) async throws {
        if task.taskName.hasPrefix("admin."), task.message.kwargs["token"] == nil {
            throw TaskRejection(reason: "unauthorised", message: "admin tasks need a token")
        }
    }

    func recorded(_ outcome: TaskOutcome, of task: TaskContext) async {
        task.logger.notice("guard saw the outcome: \(outcome)")
    }
}

LoggingSystem.bootstrap(StreamLogHandler.standardError)
let logger = Logger(label: "amqp-tasks-example-worker")
let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"

do {
    var configuration = try WorkerConfiguration(url: url)
    configuration.queues = [CommandLine.arguments.dropFirst().first ?? "celery"]
    var registry = TaskRegistry()
    try DemoTasks.register(in: &registry)
    try registry.register("admin.wipe") { task in .string("wiped by \(task.hostname)") }
    let worker = Worker(configuration: configuration, registry: registry, middleware: [Guard()], logger: logger)
    let group = ServiceGroup(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    try await group.run()
} catch {
    logger.error("\(error)")
    exit(1)
}

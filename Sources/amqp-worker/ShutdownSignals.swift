import AMQPTasks
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs a worker, the periodic scheduler (`--beat`), or both, in a `ServiceGroup` and turns SIGTERM and SIGINT
/// into Celery's two shutdowns: the first is the group's graceful shutdown (the worker's warm shutdown: running tasks get the grace period), the second, while
/// that is under way, a cold one (`Worker.shutdownNow()`: running tasks are requeued at once).
///
/// swift-service-lifecycle's own signal handling cannot say this: a graceful-shutdown signal received again is
/// ignored, and a signal cannot be both a graceful and a cancellation signal.
///
/// Under systemd (`Type=notify`, `NOTIFY_SOCKET` set) it also tells systemd when the worker is ready and when it
/// stops (`SystemdReporter`).
enum ShutdownSignals {
    static func run(
        _ worker: Worker?, beat: BeatService?, metrics: MetricsServer?, systemd: SystemdReporter?, logger: Logger
    ) async throws {
        // Shut down in reverse order: the scheduler first (handing its lock over at once), then the worker, and the
        // metrics server last (it answers for as long as the worker stops).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metrics { services.append(.init(service: metrics)) }
        // A worker that ends of itself (`celery control shutdown`) shuts the group down as SIGTERM does: the
        // scheduler hands its lock over and the process exits 0, rather than the group calling it a failure.
        if let worker { services.append(.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)) }
        if let beat { services.append(.init(service: beat)) }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let reporting = Task { await systemd?.reportUntilCancelled(worker) }
        let watcher = Task {
            var received = 0
            for await signal in signals {
                received += 1
                if received == 1 {
                    let grace = worker.map { " (grace \($0.configuration.gracePeriod))" } ?? ""
                    logger.notice("\(signal): warm shutdown\(grace); send it again for a cold shutdown")
                    reporting.cancel()
                    await reporting.value
                    systemd?.stopping("warm shutdown\(grace): finishing running tasks")
                    await group.triggerGracefulShutdown()
                } else {
                    logger.notice("\(signal) again: cold shutdown; running tasks are requeued now")
                    worker?.shutdownNow()
                }
            }
        }
        defer {
            watcher.cancel()
            reporting.cancel()
        }
        try await group.run()
    }
}

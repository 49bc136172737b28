// amqp-worker: consumes task queues and runs tasks with Swift or exec handlers. See `amqp-worker --help`.
import AMQP
import AMQPTasks
import AMQPTasksDemo
import ArgumentParser
import FoundationEssentials
import Tracing
import Logging
import Metrics
import Prometheus

@main
struct AMQPWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amqp-worker",
        abstract: "Run tasks from AMQP queues, one unacknowledged task per consumer (Celery-compatible).",
        discussion: """
            SIGTERM or SIGINT starts a warm shutdown: consumers stop, running tasks get --grace seconds to \
            finish, then are requeued, and the worker exits 0. A second SIGTERM or SIGINT is a cold shutdown: \
            running tasks are requeued at once (never acknowledged) and the worker exits 1. Exec handlers get {"id","task","args","kwargs","retries"} on stdin; \
            stdout is the result; exit 0 = SUCCESS, 75 = retry, anything else = FAILURE. A command runs in its own \
            process group with a minimal environment (PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ, TMPDIR; \
            not AMQP_URL); [tasks."NAME"] in the configuration file adds env, inherit_env, stdout_limit \
            (default 1 MiB), stderr_limit (64 KiB) and kill_timeout (5 s), for --exec handlers too. \
            Under systemd (Type=notify, NOTIFY_SOCKET set) it sends READY=1 once it consumes every queue, \
            STATUS= lines, and STOPPING=1 at a warm shutdown.
            """,
        version: AMQPTasksVersion.current)

    @Option(help: "Configuration file (default: $AMQP_TASKS_CONFIG, else ./amqp-tasks.toml if present).")
    var config: String?

    @Option(help: "Broker URL, or several comma-separated; replaces where the broker is and who logs in (over the file's and $AMQP_URL's), keeping the file's heartbeat, connection_timeout and TLS files.")
    var url: String?

    @Option(name: .customLong("queue"), help: "A queue to consume (repeatable; default: the file's [worker] queues, else celery).")
    var queues: [String] = []

    @Option(help: "Consumers per queue (default: the file's, else 1).")
    var concurrency: Int?

    @Option(help: "MAX,MIN: autoscale consumers per queue between MIN and MAX by backlog, as Celery's --autoscale (default: the file's [worker] autoscale, else off: --concurrency holds).")
    var autoscale: String?

    @Option(help: "Unacknowledged tasks per consumer (default: the file's, else 1 = each consumer holds only the task it runs).")
    var prefetch: UInt16?

    @Option(name: .customLong("exec"), help: "NAME=COMMAND: run task NAME as a process, the command split on spaces (repeatable).")
    var execHandlers: [String] = []

    @Flag(help: "Register demo.add, demo.sleep, demo.echo, demo.fail, demo.flaky, demo.trace, demo.trace_retry and demo.progress.")
    var demoTasks = false

    @Option(help: "Node name (default: amqp-worker-PID@HOST).")
    var hostname: String?

    @Option(help: "Seconds running tasks may take to finish after SIGTERM (default: the file's, else 30).")
    var grace: Double?

    @Flag(help: "Send a STARTED state before each task (Celery's task_track_started).")
    var sendStarted = false

    @Flag(help: "Send final results as transient messages (Celery's default): faster, but a broker restart loses results not yet consumed.")
    var transientResults = false

    @Flag(name: [.customShort("E"), .customLong("events")], help: "Send Celery events (for Flower, celery events, amqp-task events).")
    var events = false

    @Option(help: "Retries before a task that asks for more fails (default: the file's, else 3).")
    var maxRetries: Int?

    @Option(help: "Remote-control commands to obey: off, read-only (celery inspect and events), standard (also revoke, terminate and rate_limit; the default) or full (also shutdown, time_limit and what reshapes the worker; \"all\" is accepted for full).")
    var remoteControl: RemoteControlAccess?

    @Flag(help: "Also run the periodic scheduler: send the file's [schedules.\"NAME\"] ticks. Any number of workers may; one sends each tick (see README, Periodic tasks). Without tasks to run, only the scheduler runs.")
    var beat = false

    @Option(help: "Serve GET /metrics (Prometheus) and GET /healthz on this port (default: the file's [worker] metrics_port, else off).")
    var metricsPort: Int?

    @Option(help: "The address --metrics-port listens on (default: the file's [worker] metrics_host, else 127.0.0.1).")
    var metricsHost: String?

    @Option(help: "Trace tasks with a tiny built-in tracer (W3C traceparent, as Celery's OpenTelemetry instrumentation) that appends each finished span to this file as a line of JSON ('-': standard error). For a real backend, bootstrap your own tracer in Swift instead (README, Tracing).")
    var traceLog: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Option(help: "Log format on standard error: text, or json (one JSON object per line: time, level, message, worker, task, task_id, …) (default: the file's [worker] log_format, else text).")
    var logFormat: LogFormat?

    func validate() throws {
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError(
                "--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(logLevel)\"")
        }
        if let metricsPort, !(1...65535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be a TCP port from 1 to 65535, got \(metricsPort)")
        }
        if let metricsHost, metricsHost.isEmpty { throw ValidationError("--metrics-host must not be empty") }
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if let prefetch, prefetch < 1 { throw ValidationError("--prefetch must be at least 1") }
        if let autoscale {
            do { _ = try AutoscaleRange(parsing: autoscale) } catch { throw ValidationError("--autoscale: \(error)") }
        }
        if let grace, !(grace.isFinite && grace >= 0 && grace <= 3_153_600_000) {
            throw ValidationError("--grace must be a number of seconds from 0 to 3153600000, got \(grace)")
        }
    }

    /// The file's settings (or defaults), with the command line's options on top.
    private func workerConfiguration() throws -> (WorkerConfiguration, TasksConfiguration) {
        var configuration: WorkerConfiguration
        var file = TasksConfiguration()
        if let path = TasksConfiguration.locate(explicit: config) {
            do {
                file = try TasksConfiguration.load(path: path)
                configuration = WorkerConfiguration(configuration: file)
            } catch let errors as ConfigErrors {
                try? OutputFile.standardError.write((errors.description + "\n").utf8)
                throw ExitCode(1)
            }
        } else {
            configuration = WorkerConfiguration()
            if let fromEnvironment = ProcessInfo.processInfo.environment["AMQP_URL"], !fromEnvironment.isEmpty {
                try replaceAddresses(of: &configuration, with: fromEnvironment, from: "AMQP_URL")
            }
        }
        // Only where the broker is and who logs in: the file's heartbeat, timeout and TLS files stay.
        if let url { try replaceAddresses(of: &configuration, with: url, from: "--url") }
        if !queues.isEmpty { configuration.queues = queues }
        if let concurrency { configuration.concurrency = concurrency }
        if let autoscale {
            let range = try AutoscaleRange(parsing: autoscale)
            guard range.max <= configuration.maxConcurrency else {
                throw ValidationError(
                    "--autoscale: the maximum \(range.max) is above [worker] max_concurrency (\(configuration.maxConcurrency)): raise max_concurrency or lower the maximum")
            }
            configuration.autoscale = range
        }
        if let prefetch { configuration.prefetch = prefetch }
        if let hostname { configuration.hostname = hostname }
        if let grace { configuration.gracePeriod = .seconds(grace) }
        if sendStarted { configuration.sendStarted = true }
        if events { configuration.sendEvents = true }
        if transientResults { configuration.persistentResults = false }
        if let maxRetries { configuration.retryPolicy.maxRetries = maxRetries }
        if let remoteControl { configuration.remoteControl = remoteControl }
        if let metricsPort {
            configuration.metricsEndpoint = MetricsEndpoint(
                host: metricsHost ?? configuration.metricsEndpoint?.host ?? MetricsEndpoint.defaultHost, port: metricsPort)
        } else if let metricsHost {
            guard configuration.metricsEndpoint != nil else {
                throw ValidationError("--metrics-host needs --metrics-port (or [worker] metrics_port in the file)")
            }
            configuration.metricsEndpoint?.host = metricsHost
        }
        file.broker = configuration.broker
        return (configuration, file)
    }

    /// Log lines go to standard error, as text or (with `worker`, the node name, on every line) as JSON.
    private func bootstrapLogging(format: LogFormat, worker: String) {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        switch format {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            let output = JSONLogHandler.Output.standardError()
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label, output: output, metadata: ["worker": .string(worker)])
                handler.logLevel = level
                return handler
            }
        }
    }

    /// The file `--trace-log` appends to (created if missing), or standard error for `-`.
    private static func traceLogFile(_ path: String) throws -> OutputFile {
        if path == "-" { return OutputFile.standardError }
        do {
            return try OutputFile.appending(to: path)
        } catch {
            throw ValidationError("--trace-log: \(error); give a writable file, or - for standard error")
        }
    }

    private func replaceAddresses(of configuration: inout WorkerConfiguration, with urls: String, from source: String) throws {
        do {
            try configuration.broker.replaceAddresses(withURLs: urls)
        } catch let error as AMQPError {
            throw ValidationError("\(source): \(error.message)")
        }
    }

    func run() async throws {
        // Read (and unset) NOTIFY_SOCKET first, before any thread of ours could read the environment at the same time.
        let notifier = SystemdNotifier.fromEnvironment()
        let (configuration, file) = try workerConfiguration()
        bootstrapLogging(format: logFormat ?? configuration.logFormat, worker: configuration.hostname)
        if let traceLog { InstrumentationSystem.bootstrap(TraceLogTracer.jsonLines(to: try Self.traceLogFile(traceLog))) }
        var registry = TaskRegistry()
        if demoTasks { try DemoTasks.register(in: &registry) }
        for (name, settings) in configuration.tasks {
            if let command = settings.command {
                try registry.register(name, ExecHandler(command: command, options: ExecOptions(settings: settings)))
            }
        }
        for spec in execHandlers {
            let (name, parsed) = try ExecHandler.parse(spec)
            // The file's [tasks."NAME"] (env, inherit_env, limits) applies to an --exec handler of that name too.
            let options = configuration.tasks[name].map(ExecOptions.init(settings:)) ?? ExecOptions()
            try registry.register(name, ExecHandler(command: parsed.command, options: options))
        }
        guard !registry.names.isEmpty || beat else {
            throw ValidationError("no tasks to run: give --exec NAME=COMMAND, --demo-tasks, or [tasks.\"NAME\"] command in the file")
        }
        // Library code reports through swift-metrics; the process chooses where to: Prometheus, when asked.
        let prometheus = configuration.metricsEndpoint.map { _ in PrometheusCollectorRegistry() }
        if let prometheus {
            var factory = PrometheusMetricsFactory(registry: prometheus)
            // Tasks run (and wait) from milliseconds to hours: the default buckets end at 10 s.
            let buckets: [Duration] = [
                .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
                .seconds(900), .seconds(1800), .seconds(3600),
            ]
            factory.durationHistogramBuckets = [TaskMetricNames.runtime: buckets, TaskMetricNames.queueWait: buckets]
            MetricsSystem.bootstrap(factory)
        }
        let worker = registry.names.isEmpty ? nil : Worker(configuration: configuration, registry: registry)
        let scheduler = beat ? BeatService(configuration: file, identity: configuration.hostname) : nil
        let logger = Logger(label: "amqp-worker")
        var metricsServer: MetricsServer?
        if let endpoint = configuration.metricsEndpoint, let prometheus {
            metricsServer = MetricsServer(
                endpoint: endpoint, responder: MetricsResponder(registry: prometheus, worker: worker),
                logger: Logger(label: "amqp-worker.metrics"))
        }
        let systemd = notifier.map { SystemdReporter(notifier: $0, logger: Logger(label: "amqp-worker.systemd")) }
        do {
            try await ShutdownSignals.run(worker, beat: scheduler, metrics: metricsServer, systemd: systemd, logger: logger)
        } catch WorkerShutdown.cold {
            logger.warning("cold shutdown: running tasks were requeued for another worker; exiting with status 1")
            throw ExitCode(1)
        } catch WorkerShutdown.restartNeeded(let reason) {
            logger.critical(
                "\(reason); exiting with status \(WorkerShutdown.restartExitStatus) for the supervisor to start a fresh worker")
            throw ExitCode(WorkerShutdown.restartExitStatus)
        }
    }
}

extension RemoteControlAccess: ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}

// amqp-task: the operator's command line. Every subcommand reads the same amqp-tasks.toml. See `amqp-task --help`.
import AMQP
import AMQPTasks
import ArgumentParser
import Foundation
import Logging

@main
struct AMQPTaskCommand: AsyncParsableCommand {
    /// Log lines go to standard error in every subcommand: standard output is for results (JSON lines, ids), and
    /// swift-log's default handler would write to standard output.
    static func main() async {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "amqp-task",
        abstract: "Send tasks, read results, and manage the queues of amqp-tasks.toml.",
        version: AMQPTasksVersion.current,
        subcommands: [
            Send.self, Group.self, Chord.self, ChainCommand.self, ResultCommand.self, ConfigCommand.self, Declare.self,
            Queues.self, Purge.self, Dead.self, Inspect.self, Events.self, Schedules.self, Revoke.self,
        ])
}

/// Options every subcommand shares: where the configuration and the broker are.
struct CommonOptions: ParsableArguments {
    @Option(help: "Configuration file (default: $AMQP_TASKS_CONFIG, else ./amqp-tasks.toml if present).")
    var config: String?

    @Option(help: "Broker URL, or several comma-separated; replaces where the broker is and who logs in (over the file's and $AMQP_URL's), keeping the file's heartbeat, connection_timeout and TLS files.")
    var url: String?

    /// The configuration: the file's, or built-in defaults. `--url` wins over `AMQP_URL`, which wins over the
    /// file's `[broker] url`; both replace only the addresses and credentials, never the file's heartbeat, connection
    /// timeout or TLS files.
    func load() throws -> TasksConfiguration {
        var configuration = TasksConfiguration()
        if let path = TasksConfiguration.locate(explicit: config) {
            configuration = try TasksConfiguration.load(path: path)
        } else if let fromEnvironment = ProcessInfo.processInfo.environment["AMQP_URL"], !fromEnvironment.isEmpty {
            do {
                try configuration.broker.replaceAddresses(withURLs: fromEnvironment)
            } catch let error as AMQPError {
                throw ValidationError("AMQP_URL: \(error.message)")
            }
        }
        if let url {
            do {
                try configuration.broker.replaceAddresses(withURLs: url)
            } catch let error as AMQPError {
                throw ValidationError("--url: \(error.message)")
            }
        }
        return configuration
    }

    /// The configuration, with its errors printed (file:line: key) and exit status 1 when it has any.
    func loadReportingErrors() throws -> TasksConfiguration {
        do {
            return try load()
        } catch let errors as ConfigErrors {
            FileHandle.standardError.write(Data((errors.description + "\n").utf8))
            throw ExitCode(1)
        }
    }

    /// The configuration and a connection to the first of its brokers that answers, named `amqp-task PID` in the
    /// broker's connection list.
    func connect() async throws -> (TasksConfiguration, Connection) {
        let configuration = try loadReportingErrors()
        let connection = try await Connection.open(
            anyOf: configuration.broker.connections.map(\.consuming),  // some commands read messages
            connectionName: "amqp-task \(ProcessInfo.processInfo.processIdentifier)")
        return (configuration, connection)
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a task; print its id once the broker confirmed it, or its result with --wait.")

    @OptionGroup var common: CommonOptions

    @Argument(help: "The task name, e.g. demo.add.")
    var name: String

    @Option(help: "Positional arguments as a JSON list, e.g. '[2, 3]'.")
    var args: String = "[]"

    @Option(help: "Keyword arguments as a JSON object, e.g. '{\"z\": 1}'.")
    var kwargs: String = "{}"

    @Option(help: "The queue to send to (default: where the file's [routes] send NAME, else celery).")
    var queue: String?

    @Option(help: "Run no sooner than this many seconds from now.")
    var countdown: Double?

    @Option(help: "Revoke the task if it has not started within this many seconds.")
    var expires: Double?

    @Flag(help: "Wait for the result and print it as one JSON line; exit 1 on FAILURE, 2 on timeout. Progress states go to stderr: a bar on a terminal, plain lines otherwise.")
    var wait = false

    @Option(help: "Seconds to wait with --wait.")
    var timeout: Double = 60

    func run() async throws {
        guard let argsList = (try? JSONValue.parse(Data(args.utf8)))?.arrayValue else {
            throw ValidationError("--args must be a JSON list, got \(args)")
        }
        guard let kwargsObject = (try? JSONValue.parse(Data(kwargs.utf8)))?.objectValue else {
            throw ValidationError("--kwargs must be a JSON object, got \(kwargs)")
        }
        if let countdown, !countdown.isFinite { throw ValidationError("--countdown must be a number of seconds, got \(countdown)") }
        let configuration = try common.loadReportingErrors()
        let client = try await TaskClient.connect(configuration: configuration)
        var options = SendOptions(queue: queue)
        options.countdown = countdown.map(Duration.clampedSeconds)
        options.expiresIn = expires.map(Duration.clampedSeconds)
        options.ignoreResult = wait ? nil : true
        let id = try await client.send(name, args: argsList, kwargs: kwargsObject, options: options)
        guard wait else {
            print(id)
            await client.close()
            return
        }
        // Custom states (PROGRESS) on stderr as they come, a bar on a terminal; then the final state.
        try await ResultCommand.printFinal(of: id, from: client) {
            var display = ProgressDisplay(taskName: name)
            defer { display.endBar() }
            for try await state in client.stateUpdates(for: id, timeout: .clampedSeconds(timeout)) {
                if state.status.isFinal { return state }
                display.show(state)
            }
            // The stream ends only after a final state (or throws).
            throw ExitCode(2)
        }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check the configuration file.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the file; print the resolved configuration (password masked) or every error with file:line: key.")

        @OptionGroup var common: CommonOptions

        func run() throws {
            let configuration = try common.loadReportingErrors()
            print(ConfigSummary(configuration).text)
        }
    }
}

struct Declare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Declare every exchange, queue and binding of the file (idempotent).")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let (configuration, connection) = try await common.connect()
        do {
            for item in try await Topology.declare(configuration, on: connection) { print("declared \(item)") }
            await connection.close()
        } catch let problem as Topology.Problem {
            FileHandle.standardError.write(Data("amqp-task declare: \(problem)\n".utf8))
            await connection.close()
            throw ExitCode(1)
        }
    }
}

struct Queues: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the file's queues (or those named) with ready and unacknowledged messages and consumers.")

    @OptionGroup var common: CommonOptions

    @Option(help: "The broker's management API, asked with the broker URL's credentials (default: https://HOST:15671 for amqps://, else http://HOST:15672).")
    var managementURL: String?

    @Flag(help: "Send the credentials to the management API over plain http:// even when it is on another host.")
    var managementAllowHttp = false

    @Argument(help: "Queues to show (default: the file's [[queues]]).")
    var names: [String] = []

    func run() async throws {
        let configuration = try common.loadReportingErrors()
        let queues = names.isEmpty ? configuration.queues.map(\.name) : names
        guard !queues.isEmpty else { throw ValidationError("no queues: name some, or declare [[queues]] in the file") }
        let broker = configuration.broker.connections[0]
        let management = ManagementAPI(url: managementURL, broker: broker, allowPlainHTTP: managementAllowHttp)
        let connection = try await Connection.open(anyOf: configuration.broker.connections)
        var rows: [[String]] = [["queue", "ready", "unacked", "consumers"]]
        var unackedKnown = true
        for queue in queues {
            let channel = try await connection.openChannel()
            do {
                let state = try await channel.inspectQueue(queue)
                let unacked = await management.unacknowledged(queue: queue, vhost: broker.vhost)
                if unacked == nil { unackedKnown = false }
                rows.append([queue, "\(state.messageCount)", unacked.map(String.init) ?? "?", "\(state.consumerCount)"])
                try await channel.close()
            } catch let error as AMQPError where error.replyCode == .notFound {
                rows.append([queue, "missing", "-", "-"])
            }
        }
        await connection.close()
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max()! }
        for row in rows {
            print(zip(row, widths).enumerated().map { index, cell in
                index == 0 ? cell.0.padding(toLength: cell.1, withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: cell.1 - cell.0.count) + cell.0
            }.joined(separator: "  "))
        }
        if let refusal = management.refusal {
            FileHandle.standardError.write(Data("amqp-task: unacked counts unknown: \(refusal)\n".utf8))
        } else if !unackedKnown {
            FileHandle.standardError.write(
                Data("amqp-task: unacked counts need RabbitMQ's management API at \(ConnectionConfiguration.masked(management.base)); enable rabbitmq_management or pass --management-url\n".utf8))
        }
    }
}

struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete every ready message of a queue.")

    @OptionGroup var common: CommonOptions

    @Argument(help: "The queue to purge.")
    var queue: String

    @Flag(help: "Do not ask for confirmation.")
    var force = false

    func run() async throws {
        let (_, connection) = try await common.connect()
        let channel = try await connection.openChannel()
        let ready = try await channel.inspectQueue(queue).messageCount
        if !force {
            print("Purge \(ready) ready messages from \(queue)? They cannot be recovered. Type yes: ", terminator: "")
            guard readLine()?.trimmingCharacters(in: .whitespaces).lowercased() == "yes" else {
                print("not purged")
                await connection.close()
                throw ExitCode(1)
            }
        }
        let purged = try await channel.purgeQueue(queue)
        print("purged \(purged) messages from \(queue)")
        await connection.close()
    }
}

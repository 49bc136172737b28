// amqp-task: the operator's command line: send tasks and read their results. See `amqp-task --help`.
import AMQP
import AMQPTasks
import ArgumentParser
import Foundation
import Logging

@main
struct AMQPTaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amqp-task",
        abstract: "Send tasks to AMQP task queues and read their results.",
        subcommands: [Send.self])
}

/// Options every subcommand shares.
struct BrokerOptions: ParsableArguments {
    @Option(help: "Broker URL (default: $AMQP_URL, else the local broker).")
    var url: String = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a task; print its id once the broker confirmed it, or its result with --wait.")

    @OptionGroup var broker: BrokerOptions

    @Argument(help: "The task name, e.g. demo.add.")
    var name: String

    @Option(help: "Positional arguments as a JSON list, e.g. '[2, 3]'.")
    var args: String = "[]"

    @Option(help: "Keyword arguments as a JSON object, e.g. '{\"z\": 1}'.")
    var kwargs: String = "{}"

    @Option(help: "The queue to send to.")
    var queue: String = "celery"

    @Option(help: "Run no sooner than this many seconds from now.")
    var countdown: Double?

    @Option(help: "Revoke the task if it has not started within this many seconds.")
    var expires: Double?

    @Flag(help: "Wait for the result and print it as one JSON line; exit 1 on FAILURE, 2 on timeout.")
    var wait = false

    @Option(help: "Seconds to wait with --wait.")
    var timeout: Double = 60

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        guard let argsValue = try? JSONValue.parse(Data(args.utf8)), let argsList = argsValue.arrayValue else {
            throw ValidationError("--args must be a JSON list, got \(args)")
        }
        guard let kwargsValue = try? JSONValue.parse(Data(kwargs.utf8)), let kwargsObject = kwargsValue.objectValue else {
            throw ValidationError("--kwargs must be a JSON object, got \(kwargs)")
        }
        let client = try await TaskClient.connect(url: broker.url)
        defer { Task { await client.close() } }
        var options = SendOptions(queue: queue)
        options.countdown = countdown
        options.expiresIn = expires
        options.ignoreResult = wait ? nil : true
        let id = try await client.send(name, args: argsList, kwargs: kwargsObject, options: options)
        guard wait else {
            print(id)
            return
        }
        do {
            let result = try await client.result(for: id, timeout: .seconds(timeout))
            let line = JSONValue.object([
                "id": .string(id), "status": .string(result.status.rawValue), "result": result.result,
            ])
            print(line.jsonString)
            await client.close()
            if result.status != .success { throw ExitCode(1) }
        } catch let timeout as ResultTimeout {
            FileHandle.standardError.write(Data("amqp-task: \(timeout)\n".utf8))
            await client.close()
            throw ExitCode(2)
        }
    }
}

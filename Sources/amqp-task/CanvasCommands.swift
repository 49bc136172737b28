import AMQPTasks
import ArgumentParser
import Foundation

/// The members of a group or chord on the command line: `--task NAME --each '[[1, 2], [3, 4]]'` (one member per
/// argument list), or `--signatures '[{"task": "demo.add", "args": [1, 2]}, …]'` (Celery signature objects).
struct MemberOptions: ParsableArguments {
    @Option(help: "The task every member runs (with --each).")
    var task: String?

    @Option(help: "A JSON list of argument lists, one member each, e.g. '[[1, 2], [3, 4]]'.")
    var each: String?

    @Option(help: "A JSON list of signatures, e.g. '[{\"task\": \"demo.add\", \"args\": [1, 2]}]'.")
    var signatures: String?

    @Option(help: "The queue the members go to (default: where the file's [routes] send each, else celery).")
    var queue: String?

    func members() throws -> [TaskSignature] {
        switch (task, each, signatures) {
        case (let task?, let each?, nil):
            guard let lists = (try? JSONValue.parse(Data(each.utf8)))?.arrayValue else {
                throw ValidationError("--each must be a JSON list of argument lists, got \(each)")
            }
            return try lists.enumerated().map { index, args in
                guard let args = args.arrayValue else {
                    throw ValidationError("--each: member \(index) is \(args.jsonString), not a list of arguments")
                }
                return TaskSignature(task, args: args)
            }
        case (nil, nil, let signatures?):
            guard let list = (try? JSONValue.parse(Data(signatures.utf8)))?.arrayValue else {
                throw ValidationError("--signatures must be a JSON list of signature objects, got \(signatures)")
            }
            return try list.enumerated().map { index, json in try Self.signature(json, what: "--signatures: member \(index)") }
        default:
            throw ValidationError("give the members as --task NAME --each '[[args], …]', or as --signatures '[{…}, …]'")
        }
    }

    /// A signature from JSON: a task name string, or an object with `task` (and `args`, `kwargs`, `options`).
    static func signature(_ json: JSONValue, what: String) throws -> TaskSignature {
        if let name = json.stringValue { return TaskSignature(name) }
        guard let signature = TaskSignature(json: json) else {
            throw ValidationError("\(what) must be a task name or an object with \"task\", got \(json.jsonString)")
        }
        return signature
    }

    static func signature(_ text: String, what: String) throws -> TaskSignature {
        let json = (try? JSONValue.parse(Data(text.utf8))) ?? .string(text)
        return try signature(json, what: what)
    }
}

struct Group: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a group; print its id and member ids as JSON, or with --wait the results in member order.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var members: MemberOptions

    @Flag(help: "Wait for every member and print {\"group\", \"results\": [...]} (exit 1 if one failed, 2 on timeout).")
    var wait = false

    @Option(help: "Seconds to wait with --wait, for all members together.")
    var timeout: Double = 60

    func run() async throws {
        let signatures = try members.members()
        let client = try await TaskClient.connect(configuration: try common.loadReportingErrors())
        var options = SendOptions(queue: members.queue)
        options.ignoreResult = wait ? nil : true
        let group = try await client.send(group: signatures, options: options)
        guard wait else {
            print(JSONValue.object(["group": .string(group.id), "members": .array(group.taskIds.map(JSONValue.string))]).jsonString)
            await client.close()
            return
        }
        try await ResultCommand.printWaited(closing: client) {
            let results = try await group.results(from: client, timeout: .clampedSeconds(timeout))
            let line = JSONValue.object([
                "group": .string(group.id),
                "results": .array(results.map { ResultCommand.line(id: $0.taskId, $0) }),
            ])
            return (line, results.allSatisfy { $0.status == .success })
        }
    }
}

struct Chord: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a chord: members, and a callback that receives their results in order once the last finished.",
        discussion: """
            Prints {"chord", "callback", "reply_queue", "members"} as JSON and exits at once: the workers gather \
            the members in the broker and send the callback; read its result later with \
            `amqp-task result CALLBACK-ID --reply-queue REPLY-QUEUE`, from any process.
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var members: MemberOptions

    @Option(help: "The callback: a task name or a signature object, e.g. '{\"task\": \"demo.echo\", \"options\": {\"queue\": \"q\"}}'.")
    var callback: String

    @Option(help: "An errback, run once with the callback's id when a member fails (repeatable).")
    var errback: [String] = []

    @Option(help: "The reply queue the callback's result goes to (default: a new amqp-tasks.reply.<uuid>, printed).")
    var replyQueue: String?

    @Flag(help: "Wait for the callback's result and print it as one JSON line (exit 1 if the chord failed, 2 on timeout).")
    var wait = false

    @Option(help: "Seconds to wait with --wait.")
    var timeout: Double = 60

    func run() async throws {
        let signatures = try members.members()
        let callback = try MemberOptions.signature(self.callback, what: "--callback")
        let errbacks = try errback.map { try MemberOptions.signature($0, what: "--errback") }
        let client = try await TaskClient.connect(configuration: try common.loadReportingErrors(), replyQueue: replyQueue)
        // The members' own results are not needed: the workers gather them in the broker.
        var options = SendOptions(queue: members.queue)
        options.ignoreResult = true
        let chord = try await client.send(chord: signatures, callback: callback, errbacks: errbacks, options: options)
        guard wait else {
            print(
                JSONValue.object([
                    "chord": .string(chord.id), "callback": .string(chord.callbackId),
                    "reply_queue": .string(client.replyQueue), "members": .array(chord.group.taskIds.map(JSONValue.string)),
                ]).jsonString)
            await client.close()
            return
        }
        try await ResultCommand.printResult(of: chord.callbackId, from: client, timeout: timeout)
    }
}

struct ResultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "result",
        abstract: "Wait for a task's result on a named reply queue (e.g. a chord's callback) and print it as one JSON line.")

    @OptionGroup var common: CommonOptions

    @Argument(help: "The task id.")
    var id: String

    @Option(help: "The reply queue the result was sent to (the sender's, e.g. printed by amqp-task chord).")
    var replyQueue: String

    @Option(help: "Seconds to wait.")
    var timeout: Double = 60

    func run() async throws {
        let client = try await TaskClient.connect(configuration: try common.loadReportingErrors(), replyQueue: replyQueue)
        try await Self.printResult(of: id, from: client, timeout: timeout)
    }

    /// Prints `{"id", "status", "result"}`; exit 1 unless SUCCESS, 2 on timeout. Closes the client.
    static func printResult(of id: String, from client: TaskClient, timeout: Double) async throws {
        try await printFinal(of: id, from: client) { try await client.result(for: id, timeout: .clampedSeconds(timeout)) }
    }

    /// Prints the final result `waiting` gets as `{"id", "status", "result"}` and closes the client; exit 1
    /// unless SUCCESS, 2 when the wait timed out (said on stderr).
    static func printFinal(
        of id: String, from client: TaskClient, _ waiting: () async throws -> ResultMessage
    ) async throws {
        try await printWaited(closing: client) {
            let result = try await waiting()
            return (line(id: id, result), result.status == .success)
        }
    }

    /// `{"id", "status", "result"}` of one task's final result.
    static func line(id: String, _ result: ResultMessage) -> JSONValue {
        .object(["id": .string(id), "status": .string(result.status.rawValue), "result": result.result])
    }

    /// Prints the JSON line `waiting` makes and closes the client; exit 1 unless it succeeded, 2 when the wait
    /// timed out (said on stderr).
    static func printWaited(
        closing client: TaskClient, _ waiting: () async throws -> (line: JSONValue, succeeded: Bool)
    ) async throws {
        do {
            let (line, succeeded) = try await waiting()
            print(line.jsonString)
            await client.close()
            if !succeeded { throw ExitCode(1) }
        } catch let timeout as TaskClientError where timeout.code == .timedOut {
            FileHandle.standardError.write(Data("amqp-task: \(timeout)\n".utf8))
            await client.close()
            throw ExitCode(2)
        }
    }
}

struct ChainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chain",
        abstract: "Send a chain: each task runs with the previous one's result; print the task ids, or with --wait the last result.")

    @OptionGroup var common: CommonOptions

    @Option(help: "A JSON list of signatures, in order, e.g. '[{\"task\": \"demo.add\", \"args\": [1, 2]}, {\"task\": \"demo.add\", \"args\": [3]}]'.")
    var signatures: String

    @Option(help: "The queue every step goes to (default: where the file's [routes] send each, else celery).")
    var queue: String?

    @Flag(help: "Wait for the last step's result and print it as one JSON line (exit 1 on FAILURE, 2 on timeout).")
    var wait = false

    @Option(help: "Seconds to wait with --wait.")
    var timeout: Double = 60

    func run() async throws {
        guard let list = (try? JSONValue.parse(Data(signatures.utf8)))?.arrayValue, !list.isEmpty else {
            throw ValidationError("--signatures must be a non-empty JSON list of signature objects, got \(signatures)")
        }
        let steps = try list.enumerated().map { index, json in try MemberOptions.signature(json, what: "--signatures: step \(index)") }
        let client = try await TaskClient.connect(configuration: try common.loadReportingErrors())
        let chain = try await client.send(chain: steps, options: SendOptions(queue: queue))
        guard wait else {
            print(JSONValue.object(["tasks": .array(chain.taskIds.map(JSONValue.string))]).jsonString)
            await client.close()
            return
        }
        try await ResultCommand.printResult(of: chain.lastId, from: client, timeout: timeout)
    }
}

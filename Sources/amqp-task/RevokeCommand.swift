import AMQP
import AMQPTasks
import ArgumentParser
import Foundation

/// `amqp-task revoke ID… [--terminate]`: revokes tasks for good. Records the ids in the stream of lasting revokes
/// (`RevokeLog`: read by every Swift worker at start, kept 3 hours), then broadcasts Celery's `revoke` so that the
/// running workers, Swift and Celery alike, apply it now (with `--terminate`, to a task that runs, too).
struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Revoke tasks: recorded so that workers started later honour it too, and sent to running workers.")

    @OptionGroup var common: CommonOptions

    @Argument(help: "Task ids.")
    var ids: [String]

    @Flag(help: "Also stop the tasks that run now (Swift workers interrupt the handler; Celery's send it --signal).")
    var terminate = false

    @Option(help: "The signal a Celery worker sends to a terminated task's process.")
    var signal = "SIGTERM"

    func validate() throws {
        guard !ids.isEmpty else { throw ValidationError("give at least one task id") }
        if let empty = ids.first(where: { $0.isEmpty }) { throw ValidationError("a task id cannot be empty: \"\(empty)\"") }
    }

    func run() async throws {
        let (configuration, connection) = try await common.connect()
        let stream = configuration.worker.revokeLog ?? RevokeLog.queue
        // The running workers get the revoke even when it cannot be recorded (the stream declared by someone else
        // with other arguments, a broker without streams, no permission): the failure is reported after the send.
        var notRecorded: Error?
        do {
            try await RevokeLog.record(ids, in: stream, on: connection)
        } catch {
            notRecorded = error
        }
        let channel = try await connection.openChannel()
        try await channel.declareExchange("celery.pidbox", type: .fanout, durable: false)
        var arguments: [String: JSONValue] = [
            "task_id": .array(ids.map(JSONValue.string)), "terminate": .bool(terminate), "signal": .string(signal),
        ]
        if notRecorded == nil { arguments[RevokeLog.recordedArgument] = true }
        let request: JSONValue = [
            "method": "revoke", "arguments": .object(arguments), "destination": nil, "pattern": nil, "matcher": nil,
        ]
        try await channel.publish(
            request.jsonData(), exchange: "celery.pidbox", routingKey: "",
            properties: BasicProperties(
                contentType: "application/json", contentEncoding: "utf-8", headers: ["clock": .int32(1)],
                deliveryMode: BasicProperties.DeliveryMode.persistent, priority: 0))
        await connection.close()
        if let notRecorded {
            FileHandle.standardError.write(Data("amqp-task: sent the revoke of \(ids.count) task(s) to the running workers, but could not record it in \(stream), so workers started later will not honour it: \(notRecorded)\n".utf8))
            throw ExitCode(1)
        }
        print("revoked \(ids.count) task(s): recorded in \(stream) (workers started within \(Int(RevokeLog.lifetime.secondsValue / 3600)) h honour it) and sent to the running workers\(terminate ? ", which stop them if they run" : "")")
    }
}

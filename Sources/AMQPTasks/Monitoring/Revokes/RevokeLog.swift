import AMQP
import FoundationEssentials

/// The virtual host's lasting record of revoked tasks: a RabbitMQ stream, `amqp-tasks.revoked`, that every worker
/// reads from its start (the last `lifetime` of it) and then follows, so a revoke outlives the workers that were
/// running when it was sent and reaches the workers started after it — what Celery does with `mingle` (workers
/// swap revokes at start-up) and `--statedb` (a file per worker), here kept by the broker, replicated with it.
///
/// - Written by `amqp-task revoke` (`RevokeLog.record`), which also broadcasts Celery's `revoke` to the
///   running workers; and by a Swift worker that obeys a `revoke` from Celery's tools (`celery control revoke`,
///   Flower), so those last too (each such worker writes it once; a reader ignores the copies).
/// - Bounded like Celery's set: the stream keeps `lifetime` (3 hours) and at most `maxBytes`; a worker keeps at
///   most `WorkerState.revokedCapacity` (50,000) ids, the latest, none older than `lifetime`.
/// - An entry is JSON: `{"task_ids": ["…"], "revoked_at": <seconds since 1970>}`, optionally `"marker"`, which
///   a reader writes to know when it has read everything before it. Anything else in the stream (any user of the
///   vhost may publish to it) is logged and skipped: it never stops a worker.
public enum RevokeLog {
    /// The stream's name.
    public static let queue = "amqp-tasks.revoked"
    /// How long a revoke lasts: Celery keeps revoked ids 3 hours.
    public static let lifetime: Duration = .seconds(3 * 3600)
    /// The most the stream holds on disk (old segments go first).
    static let maxBytes: Int64 = 64 * 1024 * 1024
    /// Small segments, so that retention (which drops whole segments) follows `lifetime` closely.
    static let segmentBytes: Int32 = 4 * 1024 * 1024
    /// The most task ids one entry may carry when written (a reader takes what it finds, up to its own bound).
    public static let maxIDsPerEntry = 10_000

    /// The argument of a pidbox `revoke` that says its sender recorded it in the stream already (Celery's
    /// workers take and ignore extra arguments).
    public static let recordedArgument = "amqp_tasks_recorded"

    /// The stream's declaration: whoever comes first declares it, with the same arguments, so nobody gets a 406.
    static let arguments: FieldTable = [
        "x-queue-type": "stream", "x-max-age": .string("\(Int(lifetime.secondsValue))s"),
        "x-max-length-bytes": .int64(maxBytes), "x-stream-max-segment-size-bytes": .int32(segmentBytes),
    ]

    /// Declares the stream `name` (idempotent).
    static func declare(_ name: String = queue, on channel: Channel) async throws {
        try await channel.declareQueue(name, durable: true, arguments: arguments)
    }

    /// One entry of the stream.
    struct Entry: Equatable {
        var taskIDs: [String]
        var revokedAt: Date
        var marker: String?
        /// The worker instance that wrote it (it applied the revoke already, and skips its own entries).
        var writer: String?

        var body: Data {
            var object: [String: JSONValue] = [
                "task_ids": .array(taskIDs.map(JSONValue.string)), "revoked_at": .double(revokedAt.timeIntervalSince1970),
            ]
            if let marker { object["marker"] = .string(marker) }
            if let writer { object["writer"] = .string(writer) }
            return JSONValue.object(object).jsonData()
        }

        /// Reads an entry; nil with the reason for anything that is not one.
        static func parse(_ body: Data) -> Result<Entry, RevokeLogProblem> {
            guard let value = try? JSONValue.parse(body), case .object(let object) = value else {
                return .failure(RevokeLogProblem("not a JSON object"))
            }
            guard case .array(let list)? = object["task_ids"] else {
                return .failure(RevokeLogProblem("no \"task_ids\" list"))
            }
            let ids = list.compactMap(\.stringValue)
            guard ids.count == list.count else { return .failure(RevokeLogProblem("\"task_ids\" holds a non-string")) }
            guard let seconds = object["revoked_at"]?.doubleValue, seconds.isFinite else {
                return .failure(RevokeLogProblem("no \"revoked_at\" time"))
            }
            return .success(
                Entry(
                    taskIDs: ids, revokedAt: Date(timeIntervalSince1970: seconds), marker: object["marker"]?.stringValue,
                    writer: object["writer"]?.stringValue))
        }
    }

    /// Appends revoked ids to the stream `name` on `channel` (a confirm channel) and waits for the broker's
    /// confirms.
    static func append(
        _ ids: [String], to name: String = queue, writer: String? = nil, at time: Date = Date(), on channel: Channel
    ) async throws {
        for start in stride(from: 0, to: ids.count, by: maxIDsPerEntry) {
            let chunk = Array(ids[start..<min(ids.count, start + maxIDsPerEntry)])
            try await channel.publish(
                OutgoingMessage(
                    body: Entry(taskIDs: chunk, revokedAt: time, writer: writer).body, routingKey: name,
                    properties: BasicProperties(contentType: "application/json", deliveryMode: BasicProperties.DeliveryMode.persistent)))
        }
    }

    /// Records revoked ids in the stream `name` on a channel of its own: declares it, publishes with confirms.
    /// Used by `amqp-task revoke` and by workers obeying a `revoke` from Celery's tools (`writer` names them).
    public static func record(
        _ ids: [String], in name: String = queue, writer: String? = nil, on connection: Connection
    ) async throws {
        guard !ids.isEmpty else { return }
        let channel = try await connection.openChannel()
        defer { Task { try? await channel.close() } }
        try await declare(name, on: channel)
        try await channel.confirmSelect()
        try await append(ids, to: name, writer: writer, on: channel)
    }
}

/// Why an entry of the revoke stream was skipped.
struct RevokeLogProblem: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

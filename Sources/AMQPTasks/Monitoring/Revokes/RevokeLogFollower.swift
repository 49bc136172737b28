import AMQP
import FoundationEssentials
import Logging
import Synchronization

/// A worker's reader of `RevokeLog`: on each connection it reads the last `RevokeLog.lifetime` of the stream
/// into the worker's revoked set before the worker takes any task (`start` returns once it has), then follows
/// what is appended for as long as the connection lasts.
///
/// To know when it has read everything written before it started, it appends a marker entry of its own and
/// reads until it meets it (waiting at most `catchUpLimit`). A stream the broker refuses (no stream support, no
/// permission) costs the lasting revokes, said in the log, never the worker: revokes sent by remote control
/// still reach it while it runs.
final class RevokeLogFollower: Sendable {
    private let state: WorkerState
    private let logger: Logger
    /// The stream.
    let stream: String
    /// The worker instance, whose own entries are skipped (it applied them when it wrote them).
    let instance: String
    private let skippedEntries = Mutex(0)
    /// How long `start` waits for its marker before the worker goes on without the rest of the backlog.
    static let catchUpLimit: Duration = .seconds(30)
    /// Deliveries in flight on the stream's channel (a stream consumer needs a prefetch).
    static let prefetch: UInt16 = 500

    init(stream: String, instance: String, state: WorkerState, logger: Logger) {
        self.stream = stream
        self.instance = instance
        self.state = state
        self.logger = logger
    }

    /// Entries skipped because they were not revokes.
    var skipped: Int { skippedEntries.withLock { $0 } }

    /// The stream's consumer (cancelling it ends the reading) and the task that reads it.
    struct Reading: Sendable {
        let consumer: Consumer
        let task: Task<Void, Never>
    }

    /// Declares the stream, starts reading it, writes a marker and waits until it was read (or `catchUpLimit`
    /// passed); returns what goes on following the stream, nil when the stream cannot be read. Throws only for a
    /// lost connection.
    func start(on connection: Connection) async throws -> Reading? {
        let marker = UUID().uuidString
        let consumer: Consumer
        var channel: Channel?
        var writing: Channel?
        do {
            let reading = try await connection.openChannel()
            channel = reading
            try await RevokeLog.declare(stream, on: reading)
            try await reading.setPrefetch(Self.prefetch)
            let since = Date().addingTimeInterval(-RevokeLog.lifetime.secondsValue)
            consumer = try await reading.consume(queue: stream, arguments: ["x-stream-offset": .timestamp(since)])
            let writer = try await connection.openChannel()
            writing = writer
            try await writer.confirmSelect()
            try await writer.publish(
                OutgoingMessage(
                    body: RevokeLog.Entry(taskIDs: [], revokedAt: Date(), marker: marker, writer: instance).body,
                    routingKey: stream))
            try? await writer.close()
        } catch where !error.isConnectionLoss {
            // A consumer started before the failure (the marker refused) must not hold entries for the connection's life.
            for opened in [channel, writing].compactMap({ $0 }) where opened.isOpen { try? await opened.close() }
            logger.error(
                "lasting revokes are off on this connection: the stream \(stream) could not be read (\(error)); revokes sent while the worker runs still reach it")
            return nil
        }
        let (caughtUp, signal) = AsyncStream<Void>.makeStream()
        let reader = Task { await self.read(consumer, marker: marker, caughtUp: signal) }
        let reached = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in caughtUp { return true }
                return true  // the reader ended (connection lost): nothing more to wait for
            }
            group.addTask {
                try? await Task.sleep(for: Self.catchUpLimit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !reached {
            logger.warning(
                "read \(stream) for \(Self.catchUpLimit) without reaching its end; taking tasks now, and reading the rest as it comes")
        }
        return Reading(consumer: consumer, task: reader)
    }

    /// Reads entries into the revoked set until the consumer ends; signals when it read `marker`.
    private func read(_ consumer: Consumer, marker: String, caughtUp: AsyncStream<Void>.Continuation) async {
        defer { caughtUp.finish() }
        do {
            for try await delivery in consumer {
                try await delivery.ack()
                switch RevokeLog.Entry.parse(delivery.body) {
                case .success(let entry):
                    if !entry.taskIDs.isEmpty, entry.writer != instance {
                        state.remember(revoked: entry.taskIDs, at: entry.revokedAt)
                    }
                    if entry.marker == marker { caughtUp.yield() }
                case .failure(let problem):
                    let skipped = skippedEntries.withLock { count in
                        count += 1
                        return count
                    }
                    if skipped <= 10 || skipped % 1000 == 0 {
                        logger.warning(
                            "skipped an entry of \(stream) that is not a revoke (\(problem)); \(skipped) so far")
                    }
                }
            }
        } catch {
            if !error.isConnectionLoss && !(error is CancellationError) {
                logger.error("lasting revokes stopped on this connection: \(error)")
            }
        }
    }
}

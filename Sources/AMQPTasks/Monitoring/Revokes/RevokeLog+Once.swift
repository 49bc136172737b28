import AMQP
import FoundationEssentials
import Synchronization

extension RevokeLog {
    /// How long a claim on a revoke lasts (`recordOnce`): the pidbox queues keep a request 5 minutes, so every
    /// worker that receives the same broadcast receives it within that.
    static let claimLifetime: Duration = .seconds(300)
    /// How long a worker obeying Celery's `revoke` waits for the stream to confirm the entry before it answers
    /// with an error (the revoke holds in the worker anyway): a stream that blocks never stalls remote control.
    static let recordLimit: Duration = .seconds(5)

    /// The claim queue of a revoke of `ids` in `stream`: the same name for the same revoke, in every worker.
    static func claimQueue(_ ids: [String], stream: String) -> String {
        let digest = SHA1.digest(Array((stream + "\n" + ids.sorted().joined(separator: "\n")).utf8))
        return "amqp-tasks.revoked.claim." + digest.map { String(cFormat: "%02x", $0) }.joined()
    }

    /// Records a revoke broadcast to every worker (Celery's `revoke`) once for the whole cluster: the worker that
    /// first declares the revoke's claim queue (exclusive to its connection, gone `claimLifetime` after) writes
    /// it; the others, refused with 405 RESOURCE_LOCKED, leave it to that one. Returns whether this worker wrote
    /// it. A claimant that cannot write deletes its claim, so that the revoke sent again is recorded.
    static func recordOnce(
        _ ids: [String], in name: String = queue, writer: String, on connection: Connection
    ) async throws -> Bool {
        guard !ids.isEmpty else { return false }
        let claim = claimQueue(ids, stream: name)
        let channel = try await connection.openChannel()
        do {
            try await channel.declareQueue(
                claim, durable: false, exclusive: true, autoDelete: false,
                arguments: ["x-expires": .int32(Int32(claimLifetime.secondsValue * 1000))])
        } catch let error as AMQPError where error.replyCode == .resourceLocked {
            return false
        }
        do {
            try await record(ids, in: name, writer: writer, on: connection)
            try? await channel.close()
            return true
        } catch {
            _ = try? await channel.deleteQueue(claim)
            try? await channel.close()
            throw error
        }
    }
}

/// Runs an operation for at most a given time: past it, the caller gets `BoundedWait.TimedOut` and the operation
/// is cancelled (it may still end later; its result is dropped).
enum BoundedWait {
    /// The operation took longer than `limit`.
    struct TimedOut: Error, CustomStringConvertible {
        let limit: Duration
        var description: String { "the broker did not answer within \(limit)" }
    }

    private final class Race<T: Sendable>: Sendable {
        let continuation: Mutex<CheckedContinuation<T, Error>?>
        let work = Mutex<Task<Void, Never>?>(nil)
        init(_ continuation: CheckedContinuation<T, Error>) { self.continuation = Mutex(continuation) }
        func finish(_ result: Result<T, Error>) -> Bool {
            guard let continuation = continuation.withLock({ $0.take() }) else { return false }
            continuation.resume(with: result)
            return true
        }
    }

    static func run<T: Sendable>(
        within limit: Duration, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let race = Race(continuation)
            let timer = Task {
                try? await Task.sleep(for: limit)
                if !Task.isCancelled, race.finish(.failure(TimedOut(limit: limit))) {
                    race.work.withLock { $0 }?.cancel()
                }
            }
            let work = Task {
                let result: Result<T, Error>
                do { result = .success(try await operation()) } catch { result = .failure(error) }
                timer.cancel()
                _ = race.finish(result)
            }
            race.work.withLock { $0 = work }
        }
    }
}

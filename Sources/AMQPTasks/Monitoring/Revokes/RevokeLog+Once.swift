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
        return "amqp-tasks.revoked.claim." + LowercaseHex.string(digest)
    }

    /// The queue that says the revoke whose claim queue is `claim` was written (declared after the stream confirmed
    /// it; not exclusive, so it outlives the writer's connection; gone `claimLifetime` after it was last looked at).
    static func writtenQueue(_ claim: String) -> String { claim + ".written" }
    /// How often a worker whose claim was refused looks again whether the revoke was written or the claim released.
    static let claimPollInterval: Duration = .milliseconds(100)

    /// Another worker claimed the revoke and, within the wait, neither wrote it nor released its claim.
    struct ClaimHeldElsewhere: Error, CustomStringConvertible {
        let claim: String
        let waited: Duration
        var description: String {
            "another worker claimed this revoke (\(claim)) and did not write it within \(waited); send it again, or with amqp-task revoke"
        }
    }

    /// Records a revoke broadcast to every worker (Celery's `revoke`) once for the whole cluster in the normal case,
    /// and at least once when the worker that claimed it dies before writing it. The worker that first declares the
    /// revoke's claim queue (exclusive to its connection: the broker deletes it when that connection ends) writes
    /// it, waits for the stream's confirm, then declares the revoke's written queue (`writtenQueue`, not exclusive,
    /// gone `claimLifetime` after its last use). A worker refused the claim (405 RESOURCE_LOCKED) looks every
    /// `claimPollInterval` until the written queue exists (it returns false: written by another) or the claim is
    /// free again (its claimer died, or could not write and deleted its claim): then it claims, looks once more for
    /// the written queue (a claimer that wrote and then stopped freed the claim after declaring it), and writes. Throws
    /// `ClaimHeldElsewhere` after `limit` without either (by default a second less than `recordLimit`, which bounds the
    /// whole recording in remote control, so this error is the one answered). Returns whether this worker wrote it.
    /// `claimHeldElsewhere` is called at each refused claim, `willClaim` before each claim (tests change the broker
    /// between the steps with them).
    static func recordOnce(
        _ ids: [String], in name: String = queue, writer: String, on connection: Connection,
        waitingAtMost limit: Duration = recordLimit - .seconds(1), claimHeldElsewhere: @Sendable () -> Void = {},
        willClaim: @Sendable () async throws -> Void = {}
    ) async throws -> Bool {
        guard !ids.isEmpty else { return false }
        let claim = claimQueue(ids, stream: name)
        let written = writtenQueue(claim)
        let expiry: FieldTable = ["x-expires": .int32(Int32(claimLifetime.secondsValue * 1000))]
        let deadline = ContinuousClock.now + limit
        while true {
            if try await exists(written, on: connection) { return false }
            try await willClaim()
            let channel = try await connection.openChannel()
            do {
                try await channel.declareQueue(claim, durable: false, exclusive: true, autoDelete: false, arguments: expiry)
            } catch let error as AMQPError where error.replyCode == .resourceLocked {
                claimHeldElsewhere()
                guard ContinuousClock.now < deadline else { throw ClaimHeldElsewhere(claim: claim, waited: limit) }
                try await Task.sleep(for: claimPollInterval)
                continue
            }
            // Claimed; looked for the written queue again: a claimer that wrote it declared that queue before its
            // claim went (its connection ended) and this claim came, so it shows now though it did not before.
            if try await exists(written, on: connection) {
                try? await channel.close()
                return false
            }
            do {
                try await record(ids, in: name, writer: writer, on: connection)
            } catch {
                _ = try? await channel.deleteQueue(claim)
                try? await channel.close()
                throw error
            }
            // Written: the others stop waiting. Should this fail, they claim it once this worker's connection ends
            // and write it again (at least once).
            _ = try? await channel.declareQueue(written, durable: false, exclusive: false, autoDelete: false, arguments: expiry)
            try? await channel.close()
            return true
        }
    }

    /// Whether queue `name` exists (a passive declare, on a channel of its own: a 404 closes it).
    private static func exists(_ name: String, on connection: Connection) async throws -> Bool {
        let channel = try await connection.openChannel()
        do {
            _ = try await channel.inspectQueue(name)
            try? await channel.close()
            return true
        } catch let error as AMQPError where error.replyCode == .notFound {
            return false
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

import FoundationEssentials
import Logging

/// Matches result messages to the callers waiting for them, by task id; keeps the others, within
/// `ResultCacheLimits`, until someone asks.
actor ResultRouter {
    /// A final result with the task's earlier states.
    typealias Outcome = (final: ResultMessage, history: [ResultMessage])

    private var waiters: [String: [CheckedContinuation<Outcome, Error>]] = [:]
    /// Streams of `TaskClient.stateUpdates(for:)`, by task id and then by a token of their own.
    private var watchers: [String: [Int: StateUpdates.Continuation]] = [:]
    private var nextWatcher = 0
    private var cache: ResultCache
    /// Tasks this client sent and has not heard the end of: their results count against `maxResults`, others
    /// against `maxUnexpectedResults`.
    private var expected: ExpiringIDSet
    private var failure: Error?
    /// Tasks whose final result a caller took, newest last: a later copy of it (a result message redelivered after
    /// a lost connection, or the answer of a task run twice) is dropped instead of being kept for nobody.
    private var taken = ExpiringIDSet(capacity: 100_000, lifetime: .infinity)
    private let logger: Logger
    /// The time results are stored at and aged by; tests give their own clock.
    private let now: @Sendable () -> Date

    init(
        limits: ResultCacheLimits = ResultCacheLimits(), logger: Logger = Logger(label: "amqp-tasks.client"),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        cache = ResultCache(limits: limits)
        // Sent tasks whose results nobody took are remembered ten times as many as results are kept.
        expected = ExpiringIDSet(
            capacity: limits.maxResults.multipliedReportingOverflow(by: 10).partialValue,
            lifetime: limits.maxAge.secondsValue)
        self.logger = logger
        self.now = now
    }

    /// Results stored for nobody yet (or kept for `states(for:)`).
    var unclaimedCount: Int { cache.count }
    /// Results dropped to stay within the limits.
    var droppedCount: Int { cache.dropped }
    /// Callers waiting for a final result, across tasks.
    var waitingCount: Int { waiters.values.reduce(0) { $0 + $1.count } }

    /// Notes tasks this client is about to send, so their results are expected.
    func expect(_ ids: [String]) {
        expected.insert(ids, at: now())
    }

    /// Records a result message. `redelivered` (the broker's flag) marks a copy this client may have seen before
    /// its acknowledgement was lost; a copy of a final result already recorded is dropped.
    func deliver(_ result: ResultMessage, redelivered: Bool = false) {
        let id = result.taskId
        let now = now()
        if result.status.isFinal {
            if taken.contains(id, at: now) { return }
            if redelivered, cache.entry(id, at: now)?.history.contains(where: { $0.status == result.status }) == true {
                return
            }
        }
        let dropped = cache.record(result, expected: expected.contains(id, at: now), at: now)
        if dropped > 0 { reportDropped(dropped) }
        notifyWatchers(of: result)
        guard result.status.isFinal, let continuations = waiters.removeValue(forKey: id) else { return }
        let outcome = (result, cache.entry(id, at: now)?.history ?? [result])
        for continuation in continuations { continuation.resume(returning: outcome) }
    }

    func history(of id: String) -> [ResultMessage] {
        cache.entry(id, at: now())?.history ?? []
    }

    /// Waits for the final result of `id`; unless `keep`, it is then taken (forgotten, and later copies dropped).
    func final(for id: String, timeout: Duration, keep: Bool = false) async throws -> Outcome {
        if let entry = cache.entry(id, at: now()), let final = entry.final {
            if !keep { take(id) }
            return (final, entry.history)
        }
        if let failure { throw failure }
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            await self?.timeOut(id, after: timeout)
        }
        defer { timer.cancel() }
        let outcome = try await withCheckedThrowingContinuation { continuation in
            waiters[id, default: []].append(continuation)
        }
        if !keep { take(id) }
        return outcome
    }

    private func take(_ id: String) {
        cache.remove(id)
        expected.remove(id)
        taken.insert([id], at: now())
    }

    /// Logs the first dropped result and every thousandth after it, so a flood cannot flood the log too.
    private func reportDropped(_ count: Int) {
        let total = cache.dropped
        guard total - count == 0 || (total - count) / 1000 != total / 1000 else { return }
        logger.warning(
            "dropped \(total) unclaimed result(s) so far to stay within \(cache.limits.maxResults) results of sent tasks, \(cache.limits.maxUnexpectedResults) of others, \(cache.limits.maxAge) (ResultCacheLimits); ask for results sooner or raise the limits"
        )
    }

    private func timeOut(_ id: String, after timeout: Duration) {
        guard let continuations = waiters.removeValue(forKey: id) else { return }
        for continuation in continuations {
            continuation.resume(throwing: TaskClientError.noResult(id, within: timeout))
        }
    }

    func failAll(_ error: Error) {
        failure = error
        for streams in watchers.values { for stream in streams.values { stream.finish(throwing: error) } }
        watchers.removeAll()
        for continuations in waiters.values { for continuation in continuations { continuation.resume(throwing: error) } }
        waiters.removeAll()
    }
}

/// The states of one task as they come, for `TaskClient.stateUpdates(for:timeout:)`.
typealias StateUpdates = AsyncThrowingStream<ResultMessage, Error>

extension ResultRouter {
    /// Hands `stream` the states of `id` stored so far, then each one as it comes; finishes it after a final state,
    /// with `TaskClientError.noResult` when none came within `timeout`, or with the error that closed the client.
    func watch(_ id: String, timeout: Duration, stream: StateUpdates.Continuation) {
        let entry = cache.entry(id, at: now())
        for state in entry?.history ?? [] { stream.yield(state) }
        if let final = entry?.final, entry?.history.last != final { stream.yield(final) }
        if entry?.final != nil { return stream.finish() }
        if let failure { return stream.finish(throwing: failure) }
        let token = nextWatcher
        nextWatcher += 1
        watchers[id, default: [:]][token] = stream
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            await self?.endWatch(id, token: token, throwing: TaskClientError.noResult(id, within: timeout))
        }
        stream.onTermination = { [weak self] _ in
            timer.cancel()
            Task { await self?.endWatch(id, token: token, throwing: nil) }
        }
    }

    private func endWatch(_ id: String, token: Int, throwing error: Error?) {
        guard let stream = watchers[id]?.removeValue(forKey: token) else { return }
        if watchers[id]?.isEmpty == true { watchers[id] = nil }
        stream.finish(throwing: error)
    }

    private func notifyWatchers(of result: ResultMessage) {
        guard let streams = result.status.isFinal ? watchers.removeValue(forKey: result.taskId) : watchers[result.taskId]
        else { return }
        for stream in streams.values {
            stream.yield(result)
            if result.status.isFinal { stream.finish() }
        }
    }
}

/// How many results a `TaskClient` keeps for callers that have not asked for them yet, and for how long.
///
/// Results reach the client's reply queue whether or not anyone waits: a task sent now and asked about later, a
/// wait that timed out before its result came, a result for a task sent by an earlier run of a client with the same
/// `replyQueue`, or anything anyone who may publish to that queue sends. They are kept, oldest dropped first, within
/// these limits; a dropped result is logged and counted (`TaskClient.droppedResultCount`), and asking for it later
/// waits until the timeout. Results for tasks this client sent and results for other tasks are counted apart, so a
/// flood of foreign results cannot push out the ones this client's callers will ask for.
public struct ResultCacheLimits: Sendable, Hashable {
    /// Unclaimed results of tasks this client sent (with its `replyQueue` as `reply_to`).
    public var maxResults: Int
    /// Unclaimed results of tasks this client did not send in this run.
    public var maxUnexpectedResults: Int
    /// How long an unclaimed result is kept; also how long a sent task is remembered as this client's. A day, as
    /// long as the reply queue outlives a client that stopped using it.
    public var maxAge: Duration

    public init(maxResults: Int = 100_000, maxUnexpectedResults: Int = 1_000, maxAge: Duration = .seconds(86_400)) {
        self.maxResults = max(1, maxResults)
        self.maxUnexpectedResults = max(1, maxUnexpectedResults)
        self.maxAge = maxAge
    }
}

/// AMQP transactions on a channel.
///
/// After `selectTransactions()`, the channel's publishes and acknowledgements are held by the broker until
/// `commit()` applies them all, or `rollback()` (or the channel or connection closing first) discards them all.
/// `commit()` returns once the broker has applied them (for durable queues, stored them as a confirm would).
/// A channel is either transactional or in confirm mode, never both.
///
/// RabbitMQ applies a commit atomically with respect to a client that dies before it; a broker node that crashes
/// in the middle of a commit that spans several queues may apply part of it (see RabbitMQ's "Semantics" notes).
extension Channel {
    /// Makes this channel transactional (`tx.select`); idempotent. Throws `.invalidArgument` on a confirm channel.
    public func selectTransactions() async throws {
        let id = id
        try await perform("tx.select") { try $0.txSelect(channel: id) }
    }

    /// Applies every publish and acknowledgement since the last commit or rollback (`tx.commit`). Returns the
    /// errors (`.unroutable`) of its `mandatory` publishes that no queue took: the broker routes a transaction's
    /// publishes when it commits, so only then is it known; the rest of the transaction is applied all the same.
    @discardableResult
    public func commit() async throws -> [AMQPError] {
        let id = id
        return try await perform("tx.commit") { try $0.txCommit(channel: id) }
    }

    /// Discards every publish and acknowledgement since the last commit or rollback (`tx.rollback`). Messages
    /// whose acknowledgement was discarded stay unacknowledged on this channel.
    public func rollback() async throws {
        let id = id
        try await perform("tx.rollback") { try $0.txRollback(channel: id) }
    }
}

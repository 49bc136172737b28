import AMQP

/// A lock held through the broker: an exclusive queue, which only one connection can hold. Whoever declares it
/// first holds it for as long as its connection lasts; the others get 405 RESOURCE_LOCKED and try again every
/// `retryInterval`. When the holder's connection ends (it stops, is killed, or its host goes silent past the
/// heartbeat) the broker deletes the queue and the next to try takes it. The periodic scheduler's leader
/// (`BeatService`) and the refiller of cluster-wide rate limits (`ClusterRateLimits`) are elected this way.
struct ExclusiveQueueLock: Sendable {
    /// The queue that is the lock.
    let queue: String
    /// How often a connection that does not hold the lock tries again.
    let retryInterval: Duration

    /// Returns once `connection` holds the lock; `standingBy` is called once, when another connection holds it.
    /// Throws when the connection is lost, and `CancellationError` when cancelled.
    func take(on connection: Connection, standingBy: () -> Void = {}) async throws {
        var waiting = false
        while true {
            let channel = try await connection.openChannel()
            do {
                try await channel.declareQueue(queue, durable: false, exclusive: true, autoDelete: false)
                try? await channel.close()
                return
            } catch let error as AMQPError where error.replyCode == .resourceLocked {
                if !waiting { standingBy() }
                waiting = true
            }
            try await Task.sleep(for: retryInterval)
        }
    }
}

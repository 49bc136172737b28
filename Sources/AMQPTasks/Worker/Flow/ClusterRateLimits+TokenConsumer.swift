import AMQP
import Logging

extension ClusterRateLimits {
    /// This worker's one token consumer of `task` on `connection`: a channel of its own, prefetch 1, manual
    /// acknowledgements. The token it is delivered stays unacknowledged until a slot of this worker takes it
    /// (`takeToken` acknowledges it), so the worker holds at most one token of the task, however many of its slots
    /// wait. A message that a refiller did not issue (`RateLimitToken.messageType`) is rejected without requeue and
    /// logged with its properties: it never counts as a token.
    ///
    /// The queue is declared each time the consumer opens: someone may have deleted it (the broker then cancels the
    /// consumer, and it is opened again). A consumer the broker ends while the connection lasts (the queue deleted,
    /// the channel closed) is opened again after a pause (`pauses`) that grows while it fails again before it
    /// starts (a token queue declared by someone else with other arguments answers 406 every time); throws when the
    /// connection is lost (the worker's connection loop opens a new one and a new consumer on it), and
    /// `CancellationError` on a stop (closing the channel returns the token it held to the queue).
    func consumeTokens(of task: String, on connection: Connection) async throws {
        let queue = Self.queue(task)
        guard let handout = handouts[task] else { return }
        var failures = 0  // since the consumer last started
        while true {
            if let error = connection.closedError { throw error }
            let epoch = handout.open()
            var channel: Channel?
            do {
                let opened = try await connection.openChannel()
                channel = opened
                try await opened.declareQueue(queue, durable: true, arguments: Self.queueArguments)
                try await opened.setPrefetch(1)
                let consumer = try await opened.consume(queue: queue)
                failures = 0
                try await withTaskCancellationHandler {
                    for try await delivery in consumer {
                        guard delivery.properties.type == RateLimitToken.messageType,
                            let token = RateLimitToken.parse(delivery.body)
                        else {
                            try await reject(delivery, from: queue)
                            continue
                        }
                        handout.offer(HeldToken(delivery: delivery, token: token, epoch: epoch))
                    }
                } onCancel: {
                    Task { try? await opened.close() }
                }
                try Task.checkCancellation()
                if let error = connection.closedError { throw error }
                throw AMQPError(.closed, operation: "basic.consume", message: "the token consumer of \(queue) ended")
            } catch {
                handout.close(epoch)
                if let channel { Task { try? await channel.close() } }
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                if let closed = connection.closedError { throw closed }
                failures += 1
                let pause = pauses.delay(beforeAttempt: failures)
                logger.warning(
                    "the token consumer of the cluster-wide rate limit of \(task) ended: \(error); opening it again in \(String(cFormat: "%.3f", pause.secondsValue)) s (attempt \(failures))")
                try await Task.sleep(for: pause)
            }
        }
    }

    /// Rejects a message of a token queue that no refiller issued (no requeue: it would come back at once).
    private func reject(_ delivery: Delivery, from queue: String) async throws {
        let properties = delivery.properties
        let described = [
            ("type", properties.type), ("content_type", properties.contentType), ("message_id", properties.messageId),
            ("app_id", properties.appId), ("user_id", properties.userId), ("correlation_id", properties.correlationId),
            ("headers", properties.headers.map { $0.keys.sorted().joined(separator: ",") }),
        ].compactMap { name, value in value.map { "\(name) \($0)" } }
        logger.warning(
            "rejected a message of the token queue \(queue) that no refiller issued (\(delivery.body.count) bytes; \(described.isEmpty ? "no properties" : described.joined(separator: "; "))): it is not a token, it is dropped; find what publishes to \(queue)")
        try await delivery.reject(requeue: false)
    }
}

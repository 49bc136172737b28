import AMQP
import FoundationEssentials
import Logging

/// Holds the custody copies of one worker connection: declares the worker's `CustodyQueue` when the first task needs
/// it, consumes it on a channel of its own without a prefetch limit, and hands each copy to the task that published
/// it (`take`).
actor CustodyKeeper {
    private let connection: Connection
    private let queue: CustodyQueue
    private let logger: Logger
    private var channel: Channel?
    /// Copies published and not yet held, by token; the tasks waiting for them; those that arrived before their
    /// task waited.
    private var expected: Set<String> = []
    private var waiting: [String: CheckedContinuation<Delivery, Error>] = [:]
    private var arrivedEarly: [String: Delivery] = [:]
    private var opening: Task<Channel, Error>?
    /// How many copies the worker came to hold (for the log and the tests).
    private(set) var copiesHeld = 0

    /// Raised when a copy did not come back within its time to live (it goes back to its task queue then).
    struct CopyNotHeld: Error, CustomStringConvertible {
        let queue: String
        var description: String {
            "the custody copy did not arrive from \(queue) within \(CustodyQueue.messageTTL); the task keeps its delivery"
        }
    }

    init(connection: Connection, queue: CustodyQueue, logger: Logger) {
        self.connection = connection
        self.queue = queue
        self.logger = logger
    }

    /// The custody queue's name.
    nonisolated var queueName: String { queue.name }

    /// Publishes a copy of `received` (a task from `taskQueue`) to the custody queue, waits for the broker's confirm
    /// and until this worker holds the copy, and returns the copy's delivery (unacknowledged: settle it exactly once).
    func take(_ received: ReceivedMessage, from taskQueue: String) async throws -> Delivery {
        let channel = try await openChannel()
        let token = UUID().uuidString
        // Expected before it is published: the copy may arrive before the confirm.
        expected.insert(token)
        do {
            try await channel.publish(queue.copy(of: received, queue: taskQueue, token: token))
        } catch {
            expected.remove(token)
            arrivedEarly.removeValue(forKey: token)?.sendAck()
            throw error
        }
        let limit = Task {
            try await Task.sleep(for: CustodyQueue.messageTTL / 2)
            self.stopWaiting(for: token)
        }
        defer { limit.cancel() }
        let delivery = try await arrival(of: token)
        copiesHeld += 1
        return delivery
    }

    private func arrival(of token: String) async throws -> Delivery {
        if let delivery = arrivedEarly.removeValue(forKey: token) {
            expected.remove(token)
            return delivery
        }
        guard expected.contains(token), channel != nil else { throw CopyNotHeld(queue: queue.name) }
        return try await withCheckedThrowingContinuation { waiting[token] = $0 }
    }

    /// The copy `token` did not arrive in time (it goes back to its task queue when its time to live ends) or its
    /// channel closed: the task keeps its own delivery, and a copy that arrives later is dropped.
    private func stopWaiting(for token: String) {
        expected.remove(token)
        waiting.removeValue(forKey: token)?.resume(throwing: CopyNotHeld(queue: queue.name))
    }

    /// A copy arrived: to the task that waits for it. One nobody waits for (its task gave up waiting and kept its
    /// own delivery) is acknowledged, so it never goes back to its queue as a second copy of a running task.
    private func arrived(_ delivery: Delivery) {
        let token = delivery.properties.headers?[CustodyQueue.copyHeader]?.stringValue ?? ""
        if let waiter = waiting.removeValue(forKey: token) {
            expected.remove(token)
            waiter.resume(returning: delivery)
        } else if expected.contains(token) {
            arrivedEarly[token] = delivery
        } else {
            logger.warning("dropping a custody copy from \(queue.name) that no running task waits for")
            delivery.sendAck()
        }
    }

    /// The custody channel, opened (with the queue declared and consumed) on first use and after it closed; tasks
    /// that need it at the same time share one opening (the queue takes one, exclusive, consumer).
    private func openChannel() async throws -> Channel {
        if let channel, channel.isOpen { return channel }
        if let opening { return try await opening.value }
        let opening = Task { try await self.openNewChannel() }
        self.opening = opening
        defer { self.opening = nil }
        return try await opening.value
    }

    private func openNewChannel() async throws -> Channel {
        let channel = try await connection.openChannel()
        do {
            try await channel.confirmSelect()
            try await queue.declare(on: channel)
            let consumer = try await channel.consume(queue: queue.name, exclusive: true)
            Task { await self.read(consumer, on: channel) }
        } catch {
            try? await channel.close()
            throw error
        }
        self.channel = channel
        logger.info("holding the copies of long tasks in custody queue \(queue.name)")
        return channel
    }

    private func read(_ consumer: Consumer, on channel: Channel) async {
        do {
            for try await delivery in consumer { arrived(delivery) }
        } catch {
            if connection.isOpen {
                logger.error(
                    "the custody channel closed: \(error); copies held on it go back to their task queues and may run again in another worker"
                )
            }
        }
        if self.channel === channel { self.channel = nil }
        // Copies that arrived on it are requeued by the close: they go back to their task queues.
        arrivedEarly.removeAll()
        for token in Array(expected) { stopWaiting(for: token) }
    }
}

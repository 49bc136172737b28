import AMQP
import FoundationEssentials
import Logging

/// Delayed tasks that came due while their queue had no binding, sent back to the queues a worker consumes.
///
/// While a RabbitMQ node shuts down it stops its classic queues and drops their routes for a moment, so a delayed
/// task that comes due then (a quorum delay level keeps dead-lettering) finds no queue at `celery_delayed_delivery`
/// and lands in `amqp-tasks.due.unroutable` (the policy `Deploy/broker` sets). A worker looks there each time it
/// connects: a task whose routing key, without its delay digits, names a queue it consumes (parked tasks, retries
/// and tasks sent to a queue by name all carry it) goes straight to that queue; any other stays for a person.
enum UnroutableDelayedTasks {
    /// At most this many are looked at per connection.
    static let limit = 10_000

    /// Sends back what is for `queues`; returns how many. Failures are logged, never thrown: this is a clean-up.
    @discardableResult
    static func resend(to queues: [String], on connection: Connection, logger: Logger) async -> Int {
        var resent = 0
        do {
            let channel = try await connection.openChannel()
            try await channel.confirmSelect()
            var looked = 0
            while looked < limit, let delivery = try await channel.get(queue: DelayQueues.unroutable) {
                looked += 1
                let queue = NativeDelayedDelivery.strippingDelayPrefix(delivery.routingKey)
                guard queues.contains(queue) else { continue }  // held unacked until the channel closes: stays
                try await channel.publish(
                    OutgoingMessage(
                        body: delivery.body, exchange: "", routingKey: queue, properties: delivery.properties,
                        mandatory: true))
                try await delivery.ack()
                resent += 1
            }
            try? await channel.close()  // returns the ones for other queues to amqp-tasks.due.unroutable
        } catch let error where !error.isConnectionLoss {
            logger.warning("could not look for delayed tasks of \(queues.joined(separator: ", ")) in \(DelayQueues.unroutable): \(error)")
        } catch {}
        if resent > 0 {
            logger.warning(
                "sent \(resent) delayed task(s) back to \(queues.joined(separator: ", ")) from \(DelayQueues.unroutable): they came due while the queue had no binding (a broker restart)"
            )
        }
        return resent
    }
}

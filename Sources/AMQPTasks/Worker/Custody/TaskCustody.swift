import AMQP
import Logging

/// Keeps a long task from outliving the broker's `consumer_timeout` on any channel, so the broker never closes a
/// channel under it and never redelivers it to another worker while this one lives.
///
/// When the task has held its delivery for half the timeout (`CustodySchedule`, `CustodyWatch`), the slot's consumer is cancelled
/// (the slot takes no next task while busy), a copy of the task goes to the worker's custody queue, and once the
/// worker holds the copy the task's delivery is acknowledged. The copy is renewed the same way every half timeout
/// (a new copy held, then the old one acknowledged). When the task ends, its outcome is recorded and the copy is
/// acknowledged (`TaskHold`); if the worker dies, its copy goes back to the task queue (see `CustodyQueue`).
struct TaskCustody: Sendable {
    let keeper: CustodyKeeper
    let schedule: CustodySchedule
    /// The task queue.
    let queue: String
    /// Cancels the slot's consumer (once) so it takes no next task while this one is in custody.
    let stopConsuming: @Sendable () async -> Void
    let tally: CustodyTally
    let logger: Logger

    /// How a custody step went.
    enum StepResult: Sendable {
        case done
        /// Try again at the next look (`CustodySchedule.lookInterval`).
        case failed
        /// The broker took the task back already: custody cannot help this run any more.
        case tooLate
    }

    /// One custody step: takes the task into custody, or renews its copy. `CustodyWatch` says when.
    func step(_ hold: TaskHold, _ received: ReceivedMessage, channel: Channel, key: String) async -> StepResult {
        if case .delivery = hold.holder {
            guard channel.isOpen else {
                // Too late: the broker closed the channel (and requeued the task) already. Custody cannot help now;
                // a redelivery to this worker waits for this run (`TaskHold`).
                logger.error(
                    "task \(key) cannot be taken into custody: its channel closed already; set [worker] consumer_timeout to the broker's consumer_timeout"
                )
                return .tooLate
            }
            await stopConsuming()
        }
        let copy: Delivery
        do {
            copy = try await keeper.take(received, from: queue)
        } catch {
            logger.error("task \(key) could not be taken into custody (trying again in \(schedule.lookInterval)): \(error)")
            return .failed
        }
        // The task's holder changes only here and when it is settled, which waits for this step to end.
        switch hold.holder {
        case .delivery(let delivery):
            do {
                try await delivery.ack()
            } catch {
                // The broker has the task back already: this worker must not hold a second copy of it.
                copy.sendAck()
                logger.error("task \(key) could not be taken into custody: \(error)")
                return .tooLate
            }
            _ = hold.hand(to: copy)
            tally.tookOne()
            logger.notice(
                "task \(key) has run for half of the broker's consumer_timeout (\(schedule.consumerTimeout)): now held in custody queue \(keeper.queueName)"
            )
        case .custody(let previous):
            _ = hold.hand(to: copy)
            previous.sendAck()
            tally.renewedOne()
            logger.info("task \(key): custody copy renewed in \(keeper.queueName)")
        }
        return .done
    }
}

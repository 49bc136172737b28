import AMQP
import Foundation
import Logging

/// Stage 5 of the per-task path (see `TaskPipeline`): acknowledges a delivery once the pipeline recorded its
/// outcome, or requeues it when the outcome could not be recorded, on one consumer's channel.
///
/// The order is the product's promise: record the outcome (result, retry, dead letter), wait for the broker's
/// confirm, then ack. If recording fails, the task is not acked: it is requeued (or, if the channel is gone,
/// the broker requeues it), so it runs again rather than vanishing — at most `recordAttempts` times in this worker,
/// then it goes to `<queue>.dead` with reason `outcome-not-recorded`.
struct TaskProcessor {
    let pipeline: TaskPipeline
    let attempts: RecordAttempts
    let recordAttempts: Int
    let logger: Logger

    private var queue: String { pipeline.queue }

    func process(_ delivery: Delivery) async {
        let received = ReceivedMessage(delivery, queue: queue)
        let key = Self.attemptKey(received)
        if attempts.failures(of: key) >= recordAttempts {
            // Given up already, but the dead letter could not be made then (its channel had closed): make it now, on
            // this channel, without running the task again.
            let reason = attempts.lastError(of: key) ?? "earlier attempts failed"
            await giveUp(delivery, received, key: key, error: reason, attempts: recordAttempts)
            return
        }
        do {
            try await pipeline.handle(received)
            attempts.recorded(key)
            // The outcome is confirmed; the ack need not be waited for (if it is lost, the task is redelivered).
            delivery.sendAck()
        } catch is CancellationError {
            logger.warning("interrupted by shutdown; requeueing the task")
            try? await delivery.nack(requeue: true)
        } catch {
            await recordingFailed(delivery, received, key: key, error: error)
        }
    }

    /// The outcome could not be recorded. The task is requeued to run again, up to `recordAttempts` times in this
    /// worker (with a growing pause); then it goes to `<queue>.dead` with reason `outcome-not-recorded`, and the
    /// caller is sent a FAILURE if its reply queue takes it. An error that cannot go away by trying again (a name
    /// AMQP cannot carry) gives up at once.
    private func recordingFailed(_ delivery: Delivery, _ received: ReceivedMessage, key: String, error: Error) async {
        let permanent = (error as? AMQPError)?.kind == .invalidArgument
        let attempt = attempts.failed(key, error: "\(error)", permanent ? recordAttempts : 1)
        if attempt >= recordAttempts {
            await giveUp(delivery, received, key: key, error: "\(error)", attempts: attempt)
            return
        }
        logger.error(
            "could not record the outcome of task \(key), so it is not acknowledged and will run again (attempt \(attempt) of \(recordAttempts)): \(error)"
        )
        let pause = min(30, Double(1 << min(attempt - 1, 5)))
        if !Task.isCancelled { try? await Task.sleep(for: .clampedSeconds(pause)) }
        try? await delivery.nack(requeue: true)
    }

    /// Moves a task whose outcome could not be recorded to `<queue>.dead` (reason `outcome-not-recorded`), tells its
    /// caller, and acks it. If even that fails (the channel closed under the failed attempt), the task is requeued:
    /// its next delivery, on a new channel, comes straight here without running again.
    private func giveUp(_ delivery: Delivery, _ received: ReceivedMessage, key: String, error: String, attempts count: Int)
        async
    {
        logger.error(
            "could not record the outcome of task \(key) (attempt \(count) of \(recordAttempts)): \(error); moving it to \(DeadLetters.name(for: queue))"
        )
        do {
            try await pipeline.recorder.deadLetter(received, reason: DeadLetterReason.outcomeNotRecorded, error: error)
            await pipeline.recorder.tellCallerNotRecorded(received, error: error)
            attempts.recorded(key)
            delivery.sendAck()
        } catch {
            logger.error("could not move task \(key) to \(DeadLetters.name(for: queue)) now: \(error); it is requeued")
            if !Task.isCancelled { try? await Task.sleep(for: .seconds(1)) }
            try? await delivery.nack(requeue: true)
        }
    }

    /// What a task is known by when counting attempts: its id, else its correlation id, else its content.
    static func attemptKey(_ received: ReceivedMessage) -> String {
        if let id = received.claimedTaskId { return String(id.prefix(300)) }
        var hasher = Hasher()
        hasher.combine(received.body.prefix(4096))
        hasher.combine(received.body.count)
        return "message \(hasher.finalize())"
    }
}

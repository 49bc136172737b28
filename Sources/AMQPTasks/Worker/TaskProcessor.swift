import AMQP
import FoundationEssentials
import Logging

/// Stage 5 of the per-task path (see `TaskPipeline`): acknowledges a delivery once the pipeline recorded its
/// outcome, or requeues it when the outcome could not be recorded, on one consumer's channel.
///
/// The order is the product's promise: record the outcome (result, retry, dead letter), wait for the broker's
/// confirm, then ack. If recording fails, the task is not acked: it is requeued (or, if the channel is gone,
/// the broker requeues it), so it runs again rather than vanishing — at most `recordAttempts` times in this worker,
/// then it goes to `<queue>.dead` with reason `outcome-not-recorded`.
///
/// It also keeps a redelivery from running a task twice in this worker (`DeliveryMemory`): a redelivered message
/// whose outcome was recorded is acknowledged without running, and one that runs now waits for that run and is
/// settled as it is. A task that outlives half the broker's `consumer_timeout` goes into custody (`TaskCustody`).
struct TaskProcessor {
    let pipeline: TaskPipeline
    let attempts: RecordAttempts
    let recordAttempts: Int
    let memory: DeliveryMemory
    /// Nil when custody is off (`[worker] consumer_timeout = "off"`).
    let custody: CustodyWatch?
    let logger: Logger

    private var queue: String { pipeline.queue }

    func process(_ delivery: Delivery) async {
        let received = ReceivedMessage(delivery, queue: queue)
        let key = Self.attemptKey(received)
        let memoryKey = DeliveryMemory.key(of: received, attempt: key)
        // A custody copy that came back to its task queue (its ack was lost with the custody channel) is a
        // redelivery too, though not flagged as one.
        let seenBefore = received.redelivered || received.properties.headers?[CustodyQueue.copyHeader] != nil
        if seenBefore, await settledEarlier(delivery, key: key, memoryKey: memoryKey) { return }
        let hold = TaskHold(delivery)
        if attempts.failures(of: key) >= recordAttempts {
            // Given up already, but the dead letter could not be made then (its channel had closed): make it now, on
            // this channel, without running the task again.
            let reason = attempts.lastError(of: key) ?? "earlier attempts failed"
            await giveUp(hold, received, key: key, error: reason, attempts: recordAttempts)
            return
        }
        // A message sent twice under one id (not a redelivery) runs twice, as it would anywhere.
        let tracked = memory.started(memoryKey, hold)
        defer { if tracked { memory.ended(memoryKey, hold) } }
        custody?.begin(hold, received, key: key)
        do {
            _ = try await pipeline.handle(received)
            attempts.recorded(key)
            await custody?.end()
            // A parked task comes back as another message (`DeliveryMemory.parkedCopyHeader`), so parking is
            // remembered as any outcome: a redelivery of this one is not parked again.
            memory.recorded(memoryKey)
            // The outcome is confirmed; the ack need not be waited for (if it is lost, the task is redelivered, and
            // this worker acknowledges the redelivery without running it again).
            hold.acknowledge()
        } catch is CancellationError {
            await custody?.end()
            logger.warning("interrupted by shutdown; requeueing the task")
            await hold.requeue()
        } catch {
            await custody?.end()
            await recordingFailed(hold, received, key: key, error: error)
        }
    }

    /// A redelivered message this worker has seen: acknowledged without running when its outcome was recorded here
    /// (only its acknowledgement was lost); when it runs here now, this delivery waits for that run and is settled
    /// as it is. True when it was settled so.
    private func settledEarlier(_ delivery: Delivery, key: String, memoryKey: DeliveryMemory.Key) async -> Bool {
        if memory.wasRecorded(memoryKey) {
            logger.notice(
                "task \(key) was redelivered but this worker recorded its outcome already (its acknowledgement was lost): acknowledged without running it again"
            )
            delivery.sendAck()
            return true
        }
        guard let running = memory.running(memoryKey) else { return false }
        logger.warning(
            "task \(key) was redelivered while it still runs in this worker (the channel it came on closed, e.g. by the broker's consumer_timeout): this delivery waits for that run instead of running it twice"
        )
        switch await running.waitForSettlement() {
        case .acknowledged: delivery.sendAck()
        case .requeued: try? await delivery.nack(requeue: true)
        }
        return true
    }

    /// The outcome could not be recorded. The task is requeued to run again, up to `recordAttempts` times in this
    /// worker (with a growing pause); then it goes to `<queue>.dead` with reason `outcome-not-recorded`, and the
    /// caller is sent a FAILURE if its reply queue takes it. An error that cannot go away by trying again (a name
    /// AMQP cannot carry) gives up at once.
    private func recordingFailed(_ hold: TaskHold, _ received: ReceivedMessage, key: String, error: Error) async {
        let permanent = (error as? AMQPError)?.kind == .invalidArgument
        let attempt = attempts.failed(key, error: "\(error)", permanent ? recordAttempts : 1)
        if attempt >= recordAttempts {
            await giveUp(hold, received, key: key, error: "\(error)", attempts: attempt)
            return
        }
        logger.error(
            "could not record the outcome of task \(key), so it is not acknowledged and will run again (attempt \(attempt) of \(recordAttempts)): \(error)"
        )
        let pause = min(30, Double(1 << min(attempt - 1, 5)))
        if !Task.isCancelled { try? await Task.sleep(for: .clampedSeconds(pause)) }
        await hold.requeue()
    }

    /// Moves a task whose outcome could not be recorded to `<queue>.dead` (reason `outcome-not-recorded`), tells its
    /// caller, and acks it. If even that fails (the channel closed under the failed attempt), the task is requeued:
    /// its next delivery, on a new channel, comes straight here without running again.
    private func giveUp(_ hold: TaskHold, _ received: ReceivedMessage, key: String, error: String, attempts count: Int)
        async
    {
        logger.error(
            "could not record the outcome of task \(key) (attempt \(count) of \(recordAttempts)): \(error); moving it to \(DeadLetters.name(for: queue))"
        )
        do {
            try await pipeline.recorder.deadLetter(received, reason: DeadLetterReason.outcomeNotRecorded, error: error)
            await pipeline.recorder.tellCallerNotRecorded(received, error: error)
            attempts.recorded(key)
            hold.acknowledge()
        } catch {
            logger.error("could not move task \(key) to \(DeadLetters.name(for: queue)) now: \(error); it is requeued")
            if !Task.isCancelled { try? await Task.sleep(for: .seconds(1)) }
            await hold.requeue()
        }
    }

    /// What a task is known by when counting attempts: its id, else its correlation id, else its content.
    static func attemptKey(_ received: ReceivedMessage) -> String {
        if let id = received.claimedTaskId { return id.utf8.count <= 300 ? id : String(id.prefix(300)) }
        var hasher = Hasher()
        hasher.combine(received.body.prefix(4096))
        hasher.combine(received.body.count)
        return "message \(hasher.finalize())"
    }
}

import AMQP
import FoundationEssentials
import Logging

/// Gathers a chord's members in the broker and fires its callback exactly once, with no process kept alive and
/// nothing polling: the chord's state is one message in its queue (`ChordQueue`, `ChordState`), and the worker
/// that records a member takes its turn on that message before it acknowledges the member.
///
/// A turn, on a channel of its own in transaction mode with prefetch 1:
/// 1. `basic.consume` the chord's queue. Holding the one state message unacknowledged *is* the turn: the broker
///    delivers it to one waiting worker at a time, in the order they asked, without any of them polling. A 404 means
///    the queue is gone: the chord finished (or expired), so this member changes nothing.
/// 2. Join the member into the state (`ChordState.join`, idempotent by member index).
/// 3. In one transaction: the callback (with the results in member order) or, for a failed member, the chord's
///    FAILURE and the callback's errbacks; the new state; the acknowledgement of the old one. Commit.
/// 4. When the chord finished, delete its queue.
///
/// Why the callback runs once:
/// - Two workers finishing the last two members at once cannot both see the chord complete: only one holds the
///   state at a time, and the second sees the first's state (with its member in), so exactly one join completes it.
/// - A worker killed during its turn, before the commit, did nothing: the broker discards the uncommitted
///   transaction and gives the state back to the queue (same queue, so no other turn can start before it is back);
///   its member, unacknowledged, is redelivered and joins again.
/// - A worker killed after the commit but before acknowledging its member: the member is redelivered and joins a
///   state that has it already (or is finished, or whose queue is deleted), which changes nothing. The fired marker
///   (`finished`) and the callback are in the same transaction.
/// - Workers never declare the chord's queue (the sender does), so a member that comes after the chord finished
///   and its queue was deleted cannot start a second chord of the same id.
/// - RabbitMQ applies a transaction atomically with respect to a client that dies; a broker node that crashes in
///   the middle of a commit spanning several queues may apply part of it (the callback without the new state):
///   then a redelivered member can fire the callback a second time, with the same task id.
///
/// A member is acknowledged only after its join is committed; a join that fails (the broker unreachable, the state
/// held by another worker for longer than `ChordQueue.turnWait`) fails the member's recording, so the member is
/// requeued and joins again later.
struct ChordBarrier: Sendable {
    let connection: Connection
    let logger: Logger

    func join(_ member: ChordMember) async throws -> ChordJoin {
        let channel = try await connection.openChannel()
        do {
            let joined = try await join(member, on: channel)
            if channel.isOpen { try? await channel.close() }
            return joined
        } catch {
            if channel.isOpen { try? await channel.close() }
            throw error
        }
    }

    private func join(_ member: ChordMember, on channel: Channel) async throws -> ChordJoin {
        let queue = ChordQueue.name(member.chordId)
        try await channel.selectTransactions()
        try await channel.setPrefetch(1)
        let consumer: Consumer
        do {
            consumer = try await channel.consume(queue: queue)
        } catch let error as AMQPError where error.replyCode == .notFound {
            return .gone
        }
        guard let held = try await Self.turn(on: consumer, queue: queue) else { return .gone }
        var state: ChordState
        do {
            state = try ChordState.decode(held.body)
        } catch {
            throw ChordStateError("chord \(member.chordId): \(error); the member is requeued until its chord's state can be read (fix or delete \(queue)), then moved to its queue's .dead")
        }
        if member.index >= state.size {
            logger.error("chord \(member.chordId) has \(state.size) members, but task \(member.taskId) says it is member \(member.index): it cannot join")
        }
        let before = state
        var decision = state.join(index: member.index, taskId: member.taskId, member.contribution)
        switch decision {
        case .waiting, .complete:
            // The results travel in the state (and then in the callback): past the size a message of this worker may
            // have, the broker would refuse the new state at every attempt and the chord would never end. It fails.
            let size = state.json.jsonData().count
            guard size > member.maxStateSize else { break }
            logger.error("chord \(member.chordId): with the result of task \(member.taskId) its state would be \(size) bytes, over \(member.maxStateSize) ([worker] max_result_size): the chord fails")
            state = before
            decision = state.join(
                index: member.index, taskId: member.taskId,
                .failed(TaskFailure(
                    type: "ResultTooLarge",
                    message: "the chord's results would come to \(size) bytes with this member's, over the \(member.maxStateSize) a worker's message may have ([worker] max_result_size)",
                    module: "amqp_tasks")))
        case .unchanged, .failed:
            break
        }
        let firing = ChordFiring(state: state, defaultQueue: member.queue, parentId: member.taskId, rootId: member.rootId)
        var messages: [OutgoingMessage] = []
        var joined: ChordJoin
        switch decision {
        case .unchanged:
            // A finished chord whose queue is still here (its finisher died before deleting it): delete it now.
            // Otherwise closing the channel gives the state back as it was.
            if state.finished { try? await deleteFinished(member.chordId, on: channel) }
            return .unchanged
        case .waiting(let count):
            joined = .waiting(joined: count, of: state.size)
        case .complete(let results):
            guard let firing else { throw ChordStateError("chord \(member.chordId): its callback is not a task signature: \(state.callback.jsonString.prefix(200))") }
            messages.append(firing.callbackMessage(results: results))
            joined = .fired(callbackId: firing.callbackId)
        case .failed(let failure):
            guard let firing else { throw ChordStateError("chord \(member.chordId): its callback is not a task signature: \(state.callback.jsonString.prefix(200))") }
            messages += firing.failureMessages(failure)
            joined = .failed(callbackId: firing.callbackId)
        }
        try await checkQueuesExist(ChordFiring.queuesToCheck(messages))
        // No more deliveries to this turn: after the commit the new state goes to the next waiting worker.
        try await consumer.cancel()
        for message in messages { try await channel.publish(message) }
        try await channel.publish(state.outgoing())
        try await held.ack()
        let unroutable = try await channel.commit()
        for error in unroutable {
            logger.error("chord \(member.chordId): a message of its finish reached no queue: \(error)")
        }
        if case .fired = joined, let error = unroutable.first, let firing,
            !ChordFiring.destination(of: firing.callback, defaultQueue: member.queue).exchange.isEmpty,
            let lost = firing.callbackLostMessage(error)
        {
            // Only a callback routed through an exchange can come back (a queue is checked before the commit).
            try? await channel.publish(lost)
            _ = try? await channel.commit()
        }
        if state.finished {
            do {
                try await deleteFinished(member.chordId, on: channel)
            } catch {
                logger.warning("chord \(member.chordId) finished but its queue was not deleted (it expires by itself): \(error)")
            }
        }
        return joined
    }

    /// Deletes a finished chord's queue. Waiting workers (redelivered members) see their consumer cancelled: the
    /// chord is gone for them.
    private func deleteFinished(_ chordId: String, on channel: Channel) async throws {
        _ = try await channel.deleteQueue(ChordQueue.name(chordId))
    }

    /// Waits for this worker's turn: the state message, held unacknowledged. Nil when the queue was deleted while
    /// waiting (the chord finished).
    private static func turn(on consumer: Consumer, queue: String) async throws -> Delivery? {
        let wait = ChordQueue.turnWait
        do {
            return try await withThrowingTaskGroup(of: Delivery?.self) { group in
                group.addTask {
                    var deliveries = consumer.makeAsyncIterator()
                    guard let delivery = try await deliveries.next() else {
                        throw AMQPError(.closed, operation: "basic.consume '\(queue)'", message: "the channel closed while waiting for the chord's state")
                    }
                    return delivery
                }
                group.addTask {
                    try await Task.sleep(for: wait)
                    throw AMQPError(
                        .timeout, operation: "basic.consume '\(queue)'",
                        message: "the chord's state did not come within \(Int(wait.components.seconds)) s: another worker holds it and hangs, or the message was removed from \(queue) by hand",
                        hint: "the member is requeued and joins again later")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch let error as AMQPError where error.kind == .consumerCancelledByServer {
            return nil
        }
    }

    /// Throws when a queue the finish publishes to through the default exchange does not exist, before anything is
    /// committed: a transaction learns that a publish was unroutable only once it is applied.
    private func checkQueuesExist(_ queues: Set<String>) async throws {
        guard !queues.isEmpty else { return }
        let channel = try await connection.openChannel()
        var missing: String?
        for queue in queues.sorted() where missing == nil {
            do {
                _ = try await channel.inspectQueue(queue)
            } catch let error as AMQPError where error.replyCode == .notFound {
                missing = queue
            }
        }
        if channel.isOpen { try? await channel.close() }
        if let missing {
            throw AMQPError(
                .unroutable, operation: "chord",
                message: "the queue \(missing) the chord's callback or errback goes to does not exist",
                hint: "declare it (amqp-task declare); the member is requeued and the chord fires once it exists")
        }
    }
}

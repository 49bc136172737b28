import AMQP
import FoundationEssentials

/// Where the record stage writes a task's outcome: results, retries, follow-up tasks, parked and dead-lettered
/// copies. Every call returns only once the broker confirmed the message (or, in memory, once it is stored).
///
/// `ChannelOutbox` writes to a consumer's confirm-mode channel; `MemoryOutbox` keeps what would have been sent, so
/// the whole per-task path runs without a broker (`TaskTestRunner`).
protocol TaskOutbox: Sendable {
    /// Publishes `message` (mandatory: an unroutable message throws `AMQPError` `.unroutable`).
    func publish(_ message: OutgoingMessage) async throws
    /// Makes sure `<queue>.dead` (exchange and queue) exists before a dead letter is published to it.
    func declareDeadLetters(for queue: String, quorum: Bool) async throws
    /// Parks `message` in the delay levels so it reaches `queue` after `delay`, rounded up to whole seconds (at most
    /// 2^28 − 1 s: a longer wait comes back and is parked again).
    func park(_ message: OutgoingMessage, for queue: String, after delay: Duration) async throws
    /// Joins a chord member's outcome into its chord's state in the broker (`ChordBarrier`), firing the callback
    /// when it is the last; returns once that is committed.
    func joinChord(_ member: ChordMember) async throws -> ChordJoin
}

extension TaskOutbox {
    /// An outbox that keeps no chords: nothing is joined.
    func joinChord(_ member: ChordMember) async throws -> ChordJoin { .notTracked }
}

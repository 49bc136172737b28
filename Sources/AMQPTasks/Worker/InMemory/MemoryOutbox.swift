import AMQP
import FoundationEssentials
import Synchronization

/// An outbox that keeps what the record stage would have published, for running the per-task path without a
/// broker (`TaskTestRunner`, the pipeline's unit tests).
final class MemoryOutbox: TaskOutbox {
    /// A message parked in the delay queues.
    struct Parked: Sendable {
        let message: OutgoingMessage
        let queue: String
        let delay: Duration
    }

    private struct Contents {
        var published: [OutgoingMessage] = []
        var parked: [Parked] = []
        var deadLetterQueues: Set<String> = []
        var failNext: [Error] = []
        var chordMembers: [ChordMember] = []
    }

    private let contents = Mutex(Contents())

    init() {}

    var published: [OutgoingMessage] { contents.withLock { $0.published } }
    var parked: [Parked] { contents.withLock { $0.parked } }
    var deadLetterQueues: Set<String> { contents.withLock { $0.deadLetterQueues } }
    /// The chord members the pipeline joined (no chord is kept in memory: each join answers `.notTracked`).
    var chordMembers: [ChordMember] { contents.withLock { $0.chordMembers } }

    /// The next call fails with `error`, as a broker that refuses or loses a publish would make it.
    func failNextCall(with error: Error) { contents.withLock { $0.failNext.append(error) } }

    private func takeFailure() throws {
        if let error = contents.withLock({ $0.failNext.isEmpty ? nil : $0.failNext.removeFirst() }) { throw error }
    }

    func publish(_ message: OutgoingMessage) async throws {
        try takeFailure()
        contents.withLock { $0.published.append(message) }
    }

    func declareDeadLetters(for queue: String, quorum: Bool) async throws {
        try takeFailure()
        contents.withLock { _ = $0.deadLetterQueues.insert(DeadLetters.name(for: queue)) }
    }

    func park(_ message: OutgoingMessage, for queue: String, after delay: Duration) async throws {
        try takeFailure()
        contents.withLock { $0.parked.append(Parked(message: message, queue: queue, delay: delay)) }
    }

    func joinChord(_ member: ChordMember) async throws -> ChordJoin {
        try takeFailure()
        contents.withLock { $0.chordMembers.append(member) }
        return .notTracked
    }
}

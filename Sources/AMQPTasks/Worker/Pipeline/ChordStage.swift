import FoundationEssentials
import Logging
import AMQP

/// Stage 4b (after `RecordStage`, before the acknowledgement): a chord member's outcome joins its chord
/// (`ChordBarrier`), and the member that completes it fires the callback — or, when it failed, the chord's errbacks.
///
/// A member is a task whose `group` header names its chord and whose embed carries the callback (`chord`), as
/// Celery's chords send them. Only final outcomes join: a retried or parked member joins when it finishes. A failed,
/// revoked or rejected member fails the chord, as in Celery. A join that cannot be made throws, so the member is not
/// acknowledged and is requeued (see `TaskProcessor`).
struct ChordStage: Sendable {
    let outbox: any TaskOutbox
    let queue: String
    /// The most bytes a chord's state may have (`WorkerConfiguration.maxResultSize`).
    let maxStateSize: Int
    let logger: Logger

    func join(_ outcome: TaskOutcome, of task: TaskContext) async throws {
        guard let member = member(outcome, of: task.message) else { return }
        try await join(member, logger: task.logger)
    }

    /// A message rejected before it became a task (it did not decode) that is a chord member fails its chord
    /// now, not at the chord's expiry: what can be known of it without decoding it says so. Its `group` and
    /// `group_index` headers name the chord and its place, its `id` (or the id the decode found) the member, and
    /// its body, when it is JSON `[args, kwargs, embed]` with a `chord` in the embed, says it belongs to a chord
    /// rather than a plain group (a body that is not such JSON, or larger than `maxMessageSize`, cannot be told a
    /// chord member: its chord waits for its expiry, as before).
    func joinRejected(_ received: ReceivedMessage, _ rejection: TaskRejection, maxMessageSize: Int) async throws {
        guard let member = rejectedMember(received, rejection, maxMessageSize: maxMessageSize) else { return }
        try await join(member, logger: logger)
    }

    /// The chord member a rejected message was, as far as its headers and body tell; nil when it was none.
    func rejectedMember(_ received: ReceivedMessage, _ rejection: TaskRejection, maxMessageSize: Int) -> ChordMember? {
        let headers = received.properties.headers ?? [:]
        guard let chordId = headers["group"]?.stringValue, !chordId.isEmpty,
            let index = headers["group_index"]?.intValue, index >= 0,
            let taskId = rejection.taskId ?? headers["id"]?.stringValue,
            received.body.count <= maxMessageSize, Self.embedCarriesChord(received.body)
        else { return nil }
        guard case .failed(let failure)? = contribution(.rejected(rejection)) else { return nil }
        return ChordMember(
            chordId: chordId, index: index, taskId: taskId, rootId: headers["root_id"]?.stringValue, queue: queue,
            contribution: .failed(failure), maxStateSize: maxStateSize)
    }

    /// Whether `body` is Celery's `[args, kwargs, embed]` with a `chord` object in the embed.
    static func embedCarriesChord(_ body: Data) -> Bool {
        guard let value = try? JSONValue.parse(body), case .array(let parts) = value, parts.count == 3 else { return false }
        return parts[2]["chord"]?.objectValue != nil
    }

    private func join(_ member: ChordMember, logger: Logger) async throws {
        let joined = try await outbox.joinChord(member)
        let metadata: Logger.Metadata = ["chord": "\(member.chordId)", "member": "\(member.index)"]
        switch joined {
        case .fired(let callbackId):
            logger.info("last member of its chord: callback \(callbackId) sent", metadata: metadata)
        case .failed(let callbackId):
            logger.warning("a failed member fails its chord: errbacks of \(callbackId) sent", metadata: metadata)
        case .gone:
            logger.notice(
                "its chord's queue \(ChordQueue.name(member.chordId)) does not exist: the chord finished already or expired (or a Celery client sent it, whose result backend keeps its chords); nothing joined",
                metadata: metadata)
        case .waiting, .unchanged, .notTracked:
            break
        }
    }

    /// The member to join, or nil when the task is no chord member or its outcome is not final.
    func member(_ outcome: TaskOutcome, of message: TaskMessage) -> ChordMember? {
        guard let chordId = message.group, !chordId.isEmpty, let chord = message.embed.chord, chord.objectValue != nil
        else { return nil }
        guard let index = message.groupIndex, index >= 0 else {
            logger.error("task \(message.id) is a member of chord \(chordId) but has no group_index; it cannot join")
            return nil
        }
        guard let contribution = contribution(outcome) else { return nil }
        return ChordMember(
            chordId: chordId, index: index, taskId: message.id, rootId: message.rootId, queue: queue,
            contribution: contribution, maxStateSize: maxStateSize)
    }

    /// What a final outcome adds to its chord; nil for one that is not final.
    private func contribution(_ outcome: TaskOutcome) -> ChordState.Contribution? {
        switch outcome {
        case .succeeded(let value, _): .succeeded(value)
        case .failed(let failure, _): .failed(failure)
        case .revoked(let reason):
            .failed(TaskFailure(type: "TaskRevokedError", message: reason.rawValue, module: "celery.exceptions"))
        case .rejected(let rejection):
            .failed(
                rejection.callerFailure ?? TaskFailure(type: "TaskRejected", message: rejection.message, module: "amqp_tasks"))
        case .retried, .deferred:
            nil
        }
    }
}

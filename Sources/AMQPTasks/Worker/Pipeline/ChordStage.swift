import Foundation
import Logging

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
        let joined = try await outbox.joinChord(member)
        let metadata: Logger.Metadata = ["chord": "\(member.chordId)", "member": "\(member.index)"]
        switch joined {
        case .fired(let callbackId):
            task.logger.info("last member of its chord: callback \(callbackId) sent", metadata: metadata)
        case .failed(let callbackId):
            task.logger.warning("a failed member fails its chord: errbacks of \(callbackId) sent", metadata: metadata)
        case .gone:
            task.logger.notice(
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
        let contribution: ChordState.Contribution
        switch outcome {
        case .succeeded(let value, _): contribution = .succeeded(value)
        case .failed(let failure, _): contribution = .failed(failure)
        case .revoked(let reason):
            contribution = .failed(TaskFailure(type: "TaskRevokedError", message: reason.rawValue, module: "celery.exceptions"))
        case .rejected(let rejection):
            contribution = .failed(
                rejection.callerFailure ?? TaskFailure(type: "TaskRejected", message: rejection.message, module: "amqp_tasks"))
        case .retried, .deferred:
            return nil
        }
        return ChordMember(
            chordId: chordId, index: index, taskId: message.id, rootId: message.rootId, queue: queue,
            contribution: contribution, maxStateSize: maxStateSize)
    }
}

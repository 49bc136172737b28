/// Telling a task's caller how it is going: Celery's `self.update_state(state=..., meta=...)`.
///
/// On the wire, as a real Celery 5.7 worker sends it with the rpc:// backend (captured in
/// Tests/Fixtures/celery/result_messages.json, task `tasks.progress`): to the default exchange with the task's
/// `reply_to` as routing key; properties content_type application/json, content_encoding utf-8, headers {},
/// delivery_mode 1 (transient), priority 0, correlation_id = the task id; body
/// `{"status": "PROGRESS", "result": <meta>, "traceback": null, "children": [], "date_done": null, "task_id": ...}`
/// (date_done is set only for final states). `ResultMessage.outgoing(replyTo:persistent: false)` sends exactly that.
/// Celery's client hands each such message to `AsyncResult.get(on_message=...)` as its body, and waits on for a
/// final state.
extension TaskContext {
    /// Sends `state` with `meta` to the task's caller as a state message on its reply queue (with the rpc:// result
    /// backend, what Celery's `update_state` sends): `TaskClient.stateUpdates(for:)` and Celery's
    /// `AsyncResult.get(on_message=...)` see it before the final result.
    ///
    /// Best effort and cheap to call often: nothing is sent when the task has no reply queue or ignores its
    /// result; reports are coalesced (one publish at a time, the latest report wins), and one that cannot be
    /// published is logged and dropped, never failing the task. It throws only for a state that would end the
    /// task (SUCCESS, FAILURE, REVOKED): return or throw for those.
    public func updateState(_ state: TaskState, meta: JSONValue = .null) throws {
        guard !state.isFinal else { throw FinalStateReported(state: state) }
        progress?.report(
            ResultMessage(taskId: taskId, status: state, result: meta, parentId: message.parentId))
    }

    /// Reports `PROGRESS` with meta `{"current": current, "total": total}`, the shape `amqp-task send --wait` draws
    /// as a progress bar. Best effort, as `updateState(_:meta:)`.
    public func reportProgress(current: Int, total: Int) {
        progress?.report(
            ResultMessage(
                taskId: taskId, status: .progress, result: ["current": .int(current), "total": .int(total)],
                parentId: message.parentId))
    }
}

/// `TaskContext.updateState` was given a final state, which only the task's outcome may send.
public struct FinalStateReported: Error, CustomStringConvertible {
    public let state: TaskState
    public var description: String {
        "updateState(\(state)) would end the task before it returned: return a value for SUCCESS, throw for FAILURE; report progress with a custom state such as PROGRESS"
    }
}

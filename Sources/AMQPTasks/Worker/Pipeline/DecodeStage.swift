import FoundationEssentials
import AMQP

/// Stage 1 of the per-task path: the received message as a `TaskMessage`, or the reason it goes to `<queue>.dead`.
enum DecodeStage {
    static func decode(_ received: ReceivedMessage, maxMessageSize: Int) -> Result<TaskMessage, TaskRejection> {
        if let problem = received.contentProblem {
            return .failure(TaskRejection(reason: DeadLetterReason.malformedHeaders, message: problem))
        }
        guard received.body.count <= maxMessageSize else {
            let error =
                "the body is \(received.body.count) bytes; this worker takes at most \(maxMessageSize) ([worker] max_message_size)"
            var rejection = TaskRejection(
                reason: DeadLetterReason.messageTooLarge, message: error,
                callerFailure: TaskFailure(type: "MessageTooLarge", message: error, module: "amqp_tasks"))
            rejection.taskId = received.properties.headers?["id"]?.stringValue
            return .failure(rejection)
        }
        do {
            return .success(try TaskMessage.decode(properties: received.properties, body: received.body))
        } catch let error as TaskMessageError {
            var rejection = TaskRejection(reason: error.reason.rawValue, message: error.message)
            rejection.taskId = error.taskId
            rejection.taskName = error.taskName
            // The caller of a message that named its task is told why, as Celery's worker tells it.
            if error.taskName != nil {
                let type = error.reason == .unsupportedContentType ? "ContentDisallowed" : "DecodeError"
                rejection.callerFailure = TaskFailure(type: type, message: error.message, module: "kombu.exceptions")
            }
            return .failure(rejection)
        } catch {
            return .failure(TaskRejection(reason: TaskMessageError.Reason.invalidBody.rawValue, message: "\(error)"))
        }
    }
}

import AMQP
import FoundationEssentials
import Logging

/// What one task did in a `TaskTestRunner`.
public struct TaskTestReport: Sendable {
    /// What became of the task; nil when the message never became a task (it did not decode: see `deadLetters`).
    public let outcome: TaskOutcome?
    /// The results and states sent to the task's `reply_to`, in order (STARTED, PROGRESS and other custom states,
    /// RETRY, SUCCESS…).
    public let results: [ResultMessage]
    /// Tasks sent on the task's behalf: links, the next step of a chain, errbacks.
    public let sentTasks: [TaskMessage]
    /// Tasks parked in the delay queues (a retry, an `eta` still ahead), with the delay they wait.
    public let parked: [(task: TaskMessage, delay: Duration)]
    /// Messages moved to `<queue>.dead`, with the reason and the error text of their headers.
    public let deadLetters: [(reason: String, error: String)]

    /// The value of a SUCCESS, if the task succeeded.
    public var result: JSONValue? {
        if case .succeeded(let value, _) = outcome { return value }
        return nil
    }

    init(outcome: TaskOutcome?, outbox: MemoryOutbox) {
        self.outcome = outcome
        var results: [ResultMessage] = []
        var sent: [TaskMessage] = []
        var dead: [(String, String)] = []
        for message in outbox.published {
            if let reason = message.properties.headers?[DeadLetters.Header.reason]?.stringValue {
                dead.append((reason, message.properties.headers?[DeadLetters.Header.error]?.stringValue ?? ""))
            } else if let result = try? ResultMessage.decode(body: message.body), message.properties.headers?["task"] == nil {
                results.append(result)
            } else if let task = try? TaskMessage.decode(properties: message.properties, body: message.body) {
                sent.append(task)
            }
        }
        self.results = results
        sentTasks = sent
        deadLetters = dead
        parked = outbox.parked.compactMap { parked in
            guard let task = try? TaskMessage.decode(properties: parked.message.properties, body: parked.message.body)
            else { return nil }
            return (task, parked.delay)
        }
    }
}

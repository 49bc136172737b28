import Synchronization
import AMQP

/// What one worker remembers about the task messages it took, so that a redelivery never runs a task twice in it:
/// the deliveries whose outcome it recorded (bounded, see `RecordedTaskKeys`) and those it runs now.
///
/// A message is known by its task id, its `retries` count, its `eta` and the mark of a parked copy (`key(of:)`): a
/// retry or a parked copy is another message with the same id, and must run.
final class DeliveryMemory: Sendable {
    /// The header a worker marks each copy it parks in the delay levels with (a new value each time): the copy that
    /// comes back is another message than the one parked, so a redelivery of the parked one (its ack was lost after
    /// the park was confirmed) is acknowledged without parking a second copy, which would run the task twice.
    static let parkedCopyHeader = "amqp-tasks-parked-copy"

    private let state: Mutex<State>

    private struct State {
        var recorded: RecordedTaskKeys
        var running: [String: TaskHold] = [:]
    }

    init(capacity: Int = 5000, maxAge: Duration = .seconds(6 * 3600)) {
        state = Mutex(State(recorded: RecordedTaskKeys(capacity: capacity, maxAge: maxAge)))
    }

    /// The key a delivery is remembered by: its task id (else correlation id, else a hash of its content, as
    /// `TaskProcessor.attemptKey`), its `retries`, its `eta` and its `parkedCopyHeader`.
    static func key(of received: ReceivedMessage) -> String {
        let headers = received.properties.headers
        let retries = headers?["retries"]?.intValue.map(String.init) ?? "-"
        let eta = headers?["eta"]?.stringValue ?? "-"
        let parked = headers?[parkedCopyHeader]?.stringValue ?? "-"
        return "\(TaskProcessor.attemptKey(received)) retries=\(retries) eta=\(eta) parked=\(parked)"
    }

    /// The outcome of `key` is recorded (its ack may still be lost).
    func recorded(_ key: String) {
        state.withLock { $0.recorded.insert(key, now: .now) }
    }

    /// True when this worker recorded the outcome of `key`.
    func wasRecorded(_ key: String) -> Bool {
        state.withLock { $0.recorded.contains(key, now: .now) }
    }

    /// Registers the task `key` as running under `hold`; false when a task of that key runs already (then `hold` is
    /// not registered).
    func started(_ key: String, _ hold: TaskHold) -> Bool {
        state.withLock { state in
            guard state.running[key] == nil else { return false }
            state.running[key] = hold
            return true
        }
    }

    /// The hold of the task `key` that runs now, if any.
    func running(_ key: String) -> TaskHold? {
        state.withLock { $0.running[key] }
    }

    /// The task `key` under `hold` ended.
    func ended(_ key: String, _ hold: TaskHold) {
        state.withLock { state in
            if state.running[key] === hold { state.running[key] = nil }
        }
    }
}

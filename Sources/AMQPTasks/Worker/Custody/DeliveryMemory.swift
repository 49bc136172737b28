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
        var recorded: RecordedTaskKeys<Key>
        var running: [Key: TaskHold] = [:]
    }

    init(capacity: Int = 5000, maxAge: Duration = .seconds(6 * 3600)) {
        state = Mutex(State(recorded: RecordedTaskKeys(capacity: capacity, maxAge: maxAge)))
    }

    /// The key a delivery is remembered by: its task id (else correlation id, else a hash of its content, as
    /// `TaskProcessor.attemptKey`), its `retries`, its `eta` and its `parkedCopyHeader`.
    static func key(of received: ReceivedMessage) -> Key {
        key(of: received, attempt: TaskProcessor.attemptKey(received))
    }

    /// `key(of:)` for a delivery whose `TaskProcessor.attemptKey` is `attempt`.
    static func key(of received: ReceivedMessage, attempt: String) -> Key {
        guard let headers = received.properties.headers else {
            return Key(attempt: attempt, retries: nil, eta: nil, parked: nil)
        }
        var retries: Int?
        var eta: String?
        var parked: String?
        for (name, value) in headers.entries {
            switch name {
            case "retries" where retries == nil: retries = value.intValue
            case "eta" where eta == nil: eta = value.stringValue
            case parkedCopyHeader where parked == nil: parked = value.stringValue
            default: break
            }
        }
        return Key(attempt: attempt, retries: retries, eta: eta, parked: parked)
    }

    /// What a delivery is remembered by (`key(of:)`). Its hash is computed once, when it is made: the key is looked
    /// up and stored four to six times a task, and hashing the strings each time cost several thousand
    /// instructions a task (README, "Instructions per task").
    struct Key: Hashable, Sendable {
        let attempt: String
        let retries: Int?
        let eta: String?
        let parked: String?
        private let hash: Int

        init(attempt: String, retries: Int?, eta: String?, parked: String?) {
            self.attempt = attempt
            self.retries = retries
            self.eta = eta
            self.parked = parked
            var hasher = Hasher()
            hasher.combine(attempt)
            hasher.combine(retries)
            hasher.combine(eta)
            hasher.combine(parked)
            hash = hasher.finalize()
        }

        static func == (a: Key, b: Key) -> Bool {
            a.hash == b.hash && a.attempt == b.attempt && a.retries == b.retries && a.eta == b.eta
                && a.parked == b.parked
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    }

    /// The outcome of `key` is recorded (its ack may still be lost).
    func recorded(_ key: Key) {
        state.withLock { $0.recorded.insert(key, now: .now) }
    }

    /// True when this worker recorded the outcome of `key`.
    func wasRecorded(_ key: Key) -> Bool {
        state.withLock { $0.recorded.contains(key, now: .now) }
    }

    /// Registers the task `key` as running under `hold`; false when a task of that key runs already (then `hold` is
    /// not registered).
    func started(_ key: Key, _ hold: TaskHold) -> Bool {
        state.withLock { state in
            guard state.running[key] == nil else { return false }
            state.running[key] = hold
            return true
        }
    }

    /// The hold of the task `key` that runs now, if any.
    func running(_ key: Key) -> TaskHold? {
        state.withLock { $0.running[key] }
    }

    /// The task `key` under `hold` ended.
    func ended(_ key: Key, _ hold: TaskHold) {
        state.withLock { state in
            if state.running[key] === hold { state.running[key] = nil }
        }
    }
}

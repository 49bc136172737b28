import AMQP
import FoundationEssentials
import Synchronization

/// The worker's shape at run time: which queues it consumes, how many consumer slots each has (`concurrency`, the
/// same for every queue) and the autoscale range, as remote control (`pool_grow`, `pool_shrink`, `add_consumer`,
/// `cancel_consumer`, `autoscale`) and the `Autoscaler` change it. It outlives connections: after a reconnect the
/// worker consumes what it consumed before, added queues included and cancelled ones left out.
///
/// While a connection serves, new slots go to it through `beginConnection`; a slot that must go retires
/// (`ConsumerSlot.retire`): it finishes its task first.
final class ConsumerSlots: Sendable {
    /// What a serving connection is told: start this slot.
    typealias Starts = @Sendable (ConsumerSlot) -> Void

    /// The worker's shape, as remote control and `inspect` see it.
    struct Shape: Sendable, Equatable {
        /// The queues consumed, in the order they were configured or added.
        var queues: [String]
        /// The queues `add_consumer` added (readied again after a reconnect as it readied them).
        var added: Set<String> = []
        /// How `add_consumer` declared the queues it added with an exchange (declared again after a reconnect).
        var declarations: [String: QueueDeclaration] = [:]
        /// Slots per queue.
        var concurrency: Int
        /// Autoscale's range of slots per queue; nil when autoscale is off.
        var autoscale: AutoscaleRange?
    }

    private struct State {
        var shape: Shape
        var live: [ConsumerSlot] = []
        var starts: Starts?
        var nextID = 0

        /// A new slot of `queue`, started on the serving connection (when there is one).
        mutating func start(_ queue: String) {
            guard let starts else { return }
            let slot = ConsumerSlot(queue: queue, id: nextID)
            nextID += 1
            live.append(slot)
            starts(slot)
        }

        /// Up to `count` slots of `queue` still taking tasks, idle ones first, marked for retirement by the caller.
        func toRetire(_ count: Int, of queue: String) -> [ConsumerSlot] {
            let candidates = live.filter { $0.queue == queue && !$0.isRetiring }
            return Array((candidates.filter { !$0.isBusy } + candidates.filter(\.isBusy)).prefix(count))
        }
    }

    /// The most slots per queue `pool_grow` and `autoscale` may reach (`[worker] max_concurrency`).
    let maxConcurrency: Int
    private let state: Mutex<State>

    /// The configured shape: `concurrency` slots per queue (autoscale's minimum when it is on); the upper bound is
    /// `maxConcurrency`, or the configured concurrency when that is higher.
    init(configuration: WorkerConfiguration) {
        let concurrency = max(1, configuration.autoscale?.min ?? configuration.concurrency)
        maxConcurrency = max(configuration.maxConcurrency, concurrency, configuration.autoscale?.max ?? 1)
        state = Mutex(
            State(shape: Shape(
                queues: configuration.queues, concurrency: concurrency, autoscale: configuration.autoscale)))
    }

    /// The shape now.
    var shape: Shape { state.withLock { $0.shape } }

    /// Slots that take tasks now (retiring ones left out), per queue.
    var liveCounts: [String: Int] {
        state.withLock { state in
            state.live.filter { !$0.isRetiring }.reduce(into: [:]) { $0[$1.queue, default: 0] += 1 }
        }
    }

    /// Slots running on the serving connection, per queue, retiring ones included until they ended.
    var runningCounts: [String: Int] {
        state.withLock { state in state.live.reduce(into: [:]) { $0[$1.queue, default: 0] += 1 } }
    }

    /// Slots that take tasks but have no consumer yet: each will open a channel (or waits for one).
    var waitingForConsumer: Int {
        state.withLock { state in state.live.filter { !$0.isRetiring && !$0.hasConsumer }.count }
    }

    /// How many slots of `queue` run a task now.
    func busyCount(of queue: String) -> Int {
        state.withLock { $0.live.filter { $0.queue == queue && $0.isBusy }.count }
    }

    /// A connection begins serving: its slots (`concurrency` per queue) are handed to `starts`, and so are the
    /// slots added while it serves.
    func beginConnection(_ starts: @escaping Starts) {
        state.withLock { state in
            state.live.removeAll()
            state.starts = starts
            for queue in state.shape.queues {
                for _ in 0..<state.shape.concurrency { state.start(queue) }
            }
        }
    }

    /// The serving connection ended: slots added from now on start with the next one.
    func endConnection() {
        state.withLock { state in
            state.starts = nil
            state.live.removeAll()
        }
    }

    /// A slot ended (retired, or its connection lost).
    func slotEnded(_ slot: ConsumerSlot) {
        state.withLock { $0.live.removeAll { $0 === slot } }
    }

    /// Sets the slots per queue to `target` (1 to `maxConcurrency`, and within the autoscale range while one is set):
    /// new slots start at once, surplus ones retire, idle ones first. Returns the new concurrency.
    ///
    /// The range is the one set now, read under the same lock: the `Autoscaler` sizes from a range it read before
    /// probing the queues, and an `autoscale` command may have narrowed it meanwhile.
    @discardableResult
    func resize(to target: Int) async -> Int {
        let (retiring, concurrency) = state.withLock { state -> ([ConsumerSlot], Int) in
            var target = min(max(1, target), maxConcurrency)
            if let range = state.shape.autoscale { target = min(max(target, range.min), range.max) }
            let change = target - state.shape.concurrency
            state.shape.concurrency = target
            var retiring: [ConsumerSlot] = []
            for queue in state.shape.queues {
                if change > 0 {
                    for _ in 0..<change { state.start(queue) }
                } else if change < 0 {
                    retiring += state.toRetire(-change, of: queue)
                }
            }
            return (retiring, target)
        }
        for slot in retiring { await slot.retire() }
        return concurrency
    }

    /// Sets the autoscale range (nil: off).
    func setAutoscale(_ range: AutoscaleRange?) { state.withLock { $0.shape.autoscale = range } }

    /// Starts consuming `queue` with `concurrency` slots, remembering how it was declared; false when it is consumed
    /// already (nothing changes).
    func add(_ queue: String, declaration: QueueDeclaration?) -> Bool {
        state.withLock { state in
            guard !state.shape.queues.contains(queue) else { return false }
            state.shape.queues.append(queue)
            state.shape.added.insert(queue)
            state.shape.declarations[queue] = declaration
            for _ in 0..<state.shape.concurrency { state.start(queue) }
            return true
        }
    }

    /// Stops consuming `queue`: its slots retire (each finishes its task first). False when it was not consumed.
    func cancel(_ queue: String) async -> Bool {
        let retiring = state.withLock { state -> [ConsumerSlot]? in
            guard state.shape.queues.contains(queue) else { return nil }
            state.shape.queues.removeAll { $0 == queue }
            state.shape.added.remove(queue)
            state.shape.declarations[queue] = nil
            return state.live.filter { $0.queue == queue && !$0.isRetiring }
        }
        guard let retiring else { return false }
        for slot in retiring { await slot.retire() }
        return true
    }
}

/// Autoscale's range of consumer slots per queue (Celery's `--autoscale MAX,MIN`).
public struct AutoscaleRange: Sendable, Equatable, CustomStringConvertible {
    public var max: Int
    public var min: Int

    /// Throws when `min` is below 1 or above `max`.
    public init(max: Int, min: Int) throws {
        guard min >= 1 else {
            throw AutoscaleRangeError(
                "the autoscale minimum must be at least 1 (a worker keeps one consumer per queue), got \(min)")
        }
        guard max >= min else {
            throw AutoscaleRangeError("the autoscale maximum (\(max)) must not be below the minimum (\(min))")
        }
        self.max = max
        self.min = min
    }

    /// Celery's spelling, `"MAX,MIN"` (or `"MAX"`, the minimum then 1).
    public init(parsing text: String) throws {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingWhitespace()
        }
        guard (1...2).contains(parts.count), let max = Int(parts[0]), let min = parts.count == 2 ? Int(parts[1]) : 1
        else {
            throw AutoscaleRangeError("expected autoscale as \"MAX,MIN\" (whole numbers, as Celery's --autoscale=10,3), got \"\(text)\"")
        }
        try self.init(max: max, min: min)
    }

    public var description: String { "\(max),\(min)" }
}

/// An autoscale range that cannot be used; its text says why.
public struct AutoscaleRangeError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

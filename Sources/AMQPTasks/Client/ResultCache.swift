import FoundationEssentials

/// The state messages of tasks nobody has taken yet, bounded by `ResultCacheLimits`: per task, its history
/// (STARTED, RETRY, …) and its final result. Entries of expected tasks (sent by this client) and of unexpected ones
/// are bounded separately; the oldest entry of a class over its limit, or older than `maxAge`, is dropped first.
///
/// Not thread-safe: `ResultRouter` (an actor) owns it.
struct ResultCache {
    struct Entry {
        var history: [ResultMessage] = []
        var final: ResultMessage?
        let stored: Date
        let expected: Bool
        let sequence: Int
    }

    let limits: ResultCacheLimits
    /// The most state messages kept per task; older ones are dropped first (the final result is kept apart).
    static let maxHistory = 100
    private var entries: [String: Entry] = [:]
    /// Per class (`expected`, then the others): insertion order, where its live part starts, and how many live.
    /// An item whose sequence no longer matches its entry was removed. Kept in a two-element array indexed by the
    /// class, not dictionaries keyed by a `Bool`: those hashed a `Bool` some ten times a result.
    private var classes = [ClassOrder(), ClassOrder()]
    private var nextSequence = 0

    private struct ClassOrder {
        var order: [(id: String, sequence: Int)] = []
        var head = 0
        var count = 0
    }

    private static func slot(_ expected: Bool) -> Int { expected ? 0 : 1 }

    /// Entries dropped to stay within the limits.
    private(set) var dropped = 0

    init(limits: ResultCacheLimits) {
        self.limits = limits
    }

    /// Tasks with something stored.
    var count: Int { entries.count }

    func entry(_ id: String, at now: Date = Date()) -> Entry? {
        guard let entry = entries[id], now.timeIntervalSince(entry.stored) < limits.maxAge.secondsValue else { return nil }
        return entry
    }

    /// Adds a state message of task `id`; returns how many entries were dropped to make room.
    @discardableResult
    mutating func record(_ result: ResultMessage, expected: Bool, at now: Date = Date()) -> Int {
        let id = result.taskId
        let index: Dictionary<String, Entry>.Index
        if let found = entries.index(forKey: id) {
            index = found
        } else {
            entries[id] = Entry(stored: now, expected: expected, sequence: nextSequence)
            classes[Self.slot(expected)].order.append((id, nextSequence))
            classes[Self.slot(expected)].count += 1
            nextSequence += 1
            index = entries.index(forKey: id)!
        }
        entries.values[index].history.append(result)
        // A task reporting progress sends many states: keep the latest `maxHistory`, so one task cannot grow the cache.
        if entries.values[index].history.count > Self.maxHistory { entries.values[index].history.removeFirst() }
        if result.status.isFinal { entries.values[index].final = result }
        let before = dropped
        prune(expected: true, now: now)
        prune(expected: false, now: now)
        return dropped - before
    }

    mutating func remove(_ id: String) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        classes[Self.slot(entry.expected)].count -= 1
        compactIfSparse(expected: entry.expected)
    }

    private mutating func prune(expected: Bool, now: Date) {
        let limit = expected ? limits.maxResults : limits.maxUnexpectedResults
        let slot = Self.slot(expected)
        var head = classes[slot].head
        let order = classes[slot].order
        while head < order.count {
            let oldest = order[head]
            if let entry = entries[oldest.id], entry.sequence == oldest.sequence {
                guard classes[slot].count > limit || now.timeIntervalSince(entry.stored) >= limits.maxAge.secondsValue else { break }
                entries.removeValue(forKey: oldest.id)
                classes[slot].count -= 1
                dropped += 1
            }
            head += 1
        }
        classes[slot].head = head
        compactIfSparse(expected: expected)
    }

    /// Keeps each order within about twice its live entries.
    private mutating func compactIfSparse(expected: Bool) {
        let slot = Self.slot(expected)
        let live = classes[slot]
        guard live.order.count - live.head > 2 * live.count + 64 else { return }
        classes[slot].order = live.order[live.head...].filter { entries[$0.id]?.sequence == $0.sequence }
        classes[slot].head = 0
    }
}

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
    /// Insertion order per class (expected, unexpected); an item whose sequence no longer matches was removed.
    private var orders: [Bool: [(id: String, sequence: Int)]] = [true: [], false: []]
    private var heads: [Bool: Int] = [true: 0, false: 0]
    private var counts: [Bool: Int] = [true: 0, false: 0]
    private var nextSequence = 0
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
        if entries[result.taskId] == nil {
            entries[result.taskId] = Entry(stored: now, expected: expected, sequence: nextSequence)
            orders[expected, default: []].append((result.taskId, nextSequence))
            counts[expected, default: 0] += 1
            nextSequence += 1
        }
        entries[result.taskId]!.history.append(result)
        // A task reporting progress sends many states: keep the latest `maxHistory`, so one task cannot grow the cache.
        if entries[result.taskId]!.history.count > Self.maxHistory { entries[result.taskId]!.history.removeFirst() }
        if result.status.isFinal { entries[result.taskId]!.final = result }
        let before = dropped
        prune(expected: true, now: now)
        prune(expected: false, now: now)
        return dropped - before
    }

    mutating func remove(_ id: String) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        counts[entry.expected, default: 0] -= 1
        compactIfSparse(expected: entry.expected)
    }

    private mutating func prune(expected: Bool, now: Date) {
        let limit = expected ? limits.maxResults : limits.maxUnexpectedResults
        var head = heads[expected] ?? 0
        let order = orders[expected] ?? []
        while head < order.count {
            let oldest = order[head]
            if let entry = entries[oldest.id], entry.sequence == oldest.sequence {
                guard (counts[expected] ?? 0) > limit || now.timeIntervalSince(entry.stored) >= limits.maxAge.secondsValue else { break }
                entries.removeValue(forKey: oldest.id)
                counts[expected, default: 0] -= 1
                dropped += 1
            }
            head += 1
        }
        heads[expected] = head
        compactIfSparse(expected: expected)
    }

    /// Keeps each order within about twice its live entries.
    private mutating func compactIfSparse(expected: Bool) {
        let head = heads[expected] ?? 0
        guard let order = orders[expected], order.count - head > 2 * (counts[expected] ?? 0) + 64 else { return }
        orders[expected] = order[head...].filter { entries[$0.id]?.sequence == $0.sequence }
        heads[expected] = 0
    }
}

/// The keys of the deliveries whose outcome a worker recorded, newest last: at most `capacity` of them, none older
/// than `maxAge`. Pure (the caller says what time it is), so its bounds are tested without waiting.
///
/// A redelivered message whose key is here had its outcome recorded by this worker already: only its
/// acknowledgement was lost (the channel closed between the record and the ack, or the broker's `consumer_timeout`
/// closed it while the task ran), so it is acknowledged without running again.
struct RecordedTaskKeys<Key: Hashable & Sendable>: Sendable {
    let capacity: Int
    let maxAge: Duration
    /// When each key was last recorded.
    private var recordedAt: [Key: ContinuousClock.Instant] = [:]
    /// Keys in the order they were recorded, oldest first from `head` (a key recorded again appears twice; only its
    /// latest entry counts).
    private var order: [(key: Key, at: ContinuousClock.Instant)] = []
    private var head = 0

    init(capacity: Int = 5000, maxAge: Duration = .seconds(6 * 3600)) {
        precondition(capacity > 0, "a memory of recorded tasks must hold at least one key")
        self.capacity = capacity
        self.maxAge = maxAge
    }

    /// How many keys it holds.
    var count: Int { recordedAt.count }

    /// How many entries its recording order holds (stale ones of keys recorded again included); for the tests.
    var entriesHeld: Int { order.count - head }

    /// Remembers that the outcome of `key` was recorded `now`, forgetting the oldest keys beyond the bounds.
    mutating func insert(_ key: Key, now: ContinuousClock.Instant) {
        recordedAt[key] = now
        order.append((key, now))
        forgetExpired(now: now)
        while recordedAt.count > capacity { dropOldest() }
        if order.count - head > 2 * capacity {
            dropStaleEntries()
        } else if head > 1024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }

    /// Keeps only the latest entry of each key held: a key recorded over and over (one task id sent again and
    /// again) would otherwise grow the order by one entry a record until they aged out, however small `capacity`.
    /// Called when the order holds twice `capacity`, so at least `capacity` entries go each time.
    private mutating func dropStaleEntries() {
        var seen = Set<Key>()
        var live: [(key: Key, at: ContinuousClock.Instant)] = []
        for entry in order[head...].reversed() where recordedAt[entry.key] == entry.at && seen.insert(entry.key).inserted {
            live.append(entry)
        }
        order = live.reversed()
        head = 0
    }

    /// True when the outcome of `key` was recorded no longer than `maxAge` before `now`.
    func contains(_ key: Key, now: ContinuousClock.Instant) -> Bool {
        guard let at = recordedAt[key] else { return false }
        return now - at <= maxAge
    }

    private mutating func forgetExpired(now: ContinuousClock.Instant) {
        while head < order.count, now - order[head].at > maxAge { dropOldest() }
    }

    private mutating func dropOldest() {
        guard head < order.count else { return }
        let (key, at) = order[head]
        head += 1
        // An older entry of a key recorded again since does not forget the newer record.
        if recordedAt[key] == at { recordedAt[key] = nil }
    }
}

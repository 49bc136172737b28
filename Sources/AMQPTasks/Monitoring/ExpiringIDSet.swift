import FoundationEssentials

/// A set of task ids bounded in size and in age: past `capacity` the oldest insertion is forgotten first, and an id
/// older than `lifetime` no longer counts as a member. Used for a worker's revoked tasks (as Celery's `LimitedSet`)
/// and for the tasks a client waits to hear from, so no stream of messages grows either without end.
///
/// Not thread-safe: its owner holds it under a lock or in an actor.
struct ExpiringIDSet {
    let capacity: Int
    let lifetime: Double
    private var members: [String: (time: Date, sequence: Int)] = [:]
    /// Insertions, oldest first from `head`; one whose sequence no longer matches its member was removed.
    private var order: [(id: String, sequence: Int)] = []
    private var head = 0
    private var nextSequence = 0

    init(capacity: Int, lifetime: Double) {
        self.capacity = max(1, capacity)
        self.lifetime = lifetime
    }

    var count: Int { members.count }

    /// Adds `ids` at `now` (an id already present keeps its first time), then forgets the oldest ids past the
    /// capacity or the lifetime.
    mutating func insert<S: Sequence>(_ ids: S, at now: Date = Date()) where S.Element == String {
        for id in ids where members[id] == nil {
            members[id] = (now, nextSequence)
            order.append((id, nextSequence))
            nextSequence += 1
        }
        prune(now: now)
    }

    mutating func remove(_ id: String) {
        members.removeValue(forKey: id)
        compactIfSparse()
    }

    /// True when `id` was inserted less than `lifetime` ago and not forgotten or removed since.
    func contains(_ id: String, at now: Date = Date()) -> Bool {
        guard let member = members[id] else { return false }
        return now.timeIntervalSince(member.time) < lifetime
    }

    /// The members, sorted.
    func ids(at now: Date = Date()) -> [String] {
        members.filter { now.timeIntervalSince($0.value.time) < lifetime }.keys.sorted()
    }

    private mutating func prune(now: Date) {
        while head < order.count {
            let oldest = order[head]
            if let member = members[oldest.id], member.sequence == oldest.sequence {
                guard members.count > capacity || now.timeIntervalSince(member.time) >= lifetime else { break }
                members.removeValue(forKey: oldest.id)
            }
            head += 1
        }
        compactIfSparse()
    }

    /// Keeps `order` within about twice the members: removed ids behind a long-lived one are dropped in one pass.
    private mutating func compactIfSparse() {
        guard order.count - head > 2 * members.count + 64 else { return }
        order = order[head...].filter { members[$0.id]?.sequence == $0.sequence }
        head = 0
    }
}

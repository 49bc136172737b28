import Foundation

/// The ids of revoked tasks, bounded as Celery bounds its own (`LimitedSet`, 50,000 ids kept for 3 hours): the
/// oldest revocation is forgotten first, so no stream of `revoke` requests can grow a worker's memory without end.
///
/// A revocation older than `lifetime` no longer stops its task; by then a task that was waiting in a queue has
/// normally run or expired. Not thread-safe: `WorkerState` holds it under its lock.
struct RevokedSet {
    /// Celery's `REVOKES_MAX`.
    static let defaultCapacity = 50_000
    /// Celery's `REVOKE_EXPIRES`, in seconds.
    static let defaultLifetime: Double = 3 * 3600

    let capacity: Int
    let lifetime: Double
    private var revokedAt: [String: Date] = [:]
    /// Ids in revocation order; `head` is the oldest still in `revokedAt`.
    private var order: [String] = []
    private var head = 0

    init(capacity: Int = defaultCapacity, lifetime: Double = defaultLifetime) {
        self.capacity = max(1, capacity)
        self.lifetime = lifetime
    }

    var count: Int { revokedAt.count }

    /// Revokes `ids` at `now`, then forgets the oldest revocations past the capacity or the lifetime.
    mutating func insert<S: Sequence>(_ ids: S, at now: Date = Date()) where S.Element == String {
        for id in ids where revokedAt[id] == nil {
            revokedAt[id] = now
            order.append(id)
        }
        prune(now: now)
    }

    /// True when `id` was revoked less than `lifetime` ago and not forgotten since.
    func contains(_ id: String, at now: Date = Date()) -> Bool {
        guard let when = revokedAt[id] else { return false }
        return now.timeIntervalSince(when) < lifetime
    }

    /// The ids still revoked, sorted.
    func ids(at now: Date = Date()) -> [String] {
        revokedAt.filter { now.timeIntervalSince($0.value) < lifetime }.keys.sorted()
    }

    private mutating func prune(now: Date) {
        while head < order.count {
            let oldest = order[head]
            let expired = revokedAt[oldest].map { now.timeIntervalSince($0) >= lifetime } ?? true
            guard revokedAt.count > capacity || expired else { break }
            revokedAt.removeValue(forKey: oldest)
            head += 1
        }
        // Drop the forgotten prefix once it is as long as what is kept, so `order` stays within twice the capacity.
        if head > 0, head >= order.count - head {
            order.removeFirst(head)
            head = 0
        }
    }
}

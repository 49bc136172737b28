import Foundation

/// What a worker is doing, shared by its consumers, its events and its remote-control answers.
actor WorkerState {
    /// A task being run, as `inspect active` reports it.
    struct ActiveTask: Sendable {
        let message: TaskMessage
        let queue: String
        let redelivered: Bool
        let started: Date
        let cancel: @Sendable () -> Void
    }

    private(set) var active: [String: ActiveTask] = [:]
    private(set) var processed: [String: Int] = [:]
    private var revoked: Set<String> = []
    private var clock = 0

    /// The next value of the worker's Lamport clock (Celery's `clock` field).
    func tick() -> Int {
        clock += 1
        return clock
    }

    /// Merges a clock seen on an incoming message.
    func observe(clock other: Int) { clock = max(clock, other) }

    func started(_ task: ActiveTask) { active[task.message.id] = task }

    func finished(_ id: String, name: String) {
        active.removeValue(forKey: id)
        processed[name, default: 0] += 1
    }

    var totalProcessed: Int { processed.values.reduce(0, +) }

    /// Marks tasks as revoked; with `terminate`, running ones are interrupted. Returns the ids that were running.
    func revoke(_ ids: [String], terminate: Bool) -> [String] {
        revoked.formUnion(ids)
        let running = ids.filter { active[$0] != nil }
        if terminate { for id in running { active[id]?.cancel() } }
        return running
    }

    func isRevoked(_ id: String) -> Bool { revoked.contains(id) }

    var revokedIDs: [String] { revoked.sorted() }
}

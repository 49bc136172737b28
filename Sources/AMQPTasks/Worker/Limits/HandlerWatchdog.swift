import AMQP
import FoundationEssentials
import Dispatch
import Synchronization

/// Watches one worker's handler runs from a thread of its own, never from Swift's cooperative pool (which
/// handlers that block their thread can fill: on 2 cores it has 2 threads).
///
/// It fires each run's soft and hard time limits, and keeps count of the *abandoned* handlers: those the worker
/// stopped waiting for (hard time limit, `revoke --terminate`, shutdown) that have not ended. Swift cannot kill a
/// task, so such a handler may keep a thread of the pool busy for ever. While any runs, the watchdog also checks that
/// the pool still runs work. When more than `Policy.maxAbandoned` abandoned handlers still run a second after they
/// were abandoned, or when the pool has run nothing for `starvationLimit` while one does, it calls
/// `Policy.onRestartNeeded` once, saying why: only a new process gets those threads back.
///
/// The thread runs only while there is something to watch, and ends after `idleExit` without any.
final class HandlerWatchdog: Sendable {
    /// What a worker does about abandoned handlers.
    struct Policy: Sendable {
        /// More abandoned handlers than this, still running, and the worker must be restarted.
        var maxAbandoned: Int
        /// Called once, from the watchdog's thread, with the reason.
        var onRestartNeeded: @Sendable (String) -> Void
    }

    /// How long an abandoned handler may take to end before it counts: one that honours cancellation ends at once.
    static let lingerGrace: Duration = .seconds(1)
    /// How long the cooperative pool may run nothing, while an abandoned handler runs, before it counts as starved.
    static let starvationLimit: Duration = .seconds(10)
    /// How often the pool is probed while an abandoned handler runs.
    static let probeInterval: Duration = .milliseconds(500)
    /// How long the thread stays with nothing to watch before it ends.
    static let idleExit: Duration = .seconds(5)

    private struct Entry {
        let run: HandlerRun
        var soft: ContinuousClock.Instant?
        var hard: ContinuousClock.Instant?
        var abandonedAt: ContinuousClock.Instant?
        var isWatched: Bool { soft != nil || hard != nil || abandonedAt != nil }
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        var nextId = 0
        var threadRunning = false
        var idleSince: ContinuousClock.Instant?
        var probeSent: ContinuousClock.Instant?
        var policy: Policy?
        var tripped = false
    }

    /// What one turn of the thread's loop does, decided under the lock and done outside it.
    private struct Turn {
        var soft: [HandlerRun] = []
        var hard: [HandlerRun] = []
        var sendProbe = false
        var restart: (Policy, String)?
        var exit = false
        var next: ContinuousClock.Instant
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    init() {}

    /// Sets what happens when abandoned handlers pile up; without a policy they are only counted.
    func setPolicy(_ policy: Policy) { state.withLock { $0.policy = policy } }

    /// Abandoned handlers that have not ended, however recently they were abandoned.
    var abandonedStillRunning: Int { state.withLock { $0.entries.values.count { $0.abandonedAt != nil } } }

    /// The runs registered and not yet ended (watched or not): what each `register` costs is kept here.
    var registeredRuns: Int { state.withLock { $0.entries.count } }

    /// Starts watching `run`, with its soft and hard limits from now; returns its id for `ended` and `abandoned`.
    func register(_ run: HandlerRun, soft: Duration?, hard: Duration?) -> Int {
        let now = ContinuousClock.now
        let entry = Entry(run: run, soft: soft.map { now + $0 }, hard: hard.map { now + $0 })
        let (id, start) = state.withLock { state in
            let id = state.nextId
            state.nextId += 1
            state.entries[id] = entry
            return (id, entry.isWatched && startThreadIfNeeded(&state))
        }
        if start { startThread() } else if entry.isWatched { wake.signal() }
        return id
    }

    /// The handler of run `id` has ended (returned or thrown), abandoned or not.
    func ended(_ id: Int) { _ = state.withLock { $0.entries.removeValue(forKey: id) } }

    /// The worker stopped waiting for run `id`, whose handler still runs: its limits no longer matter, and it
    /// counts as abandoned until it ends.
    func abandoned(_ id: Int) {
        let start = state.withLock { state -> Bool in
            guard state.entries[id] != nil else { return false }
            state.entries[id]?.abandonedAt = .now
            state.entries[id]?.soft = nil
            state.entries[id]?.hard = nil
            return startThreadIfNeeded(&state)
        }
        if start { startThread() } else { wake.signal() }
    }

    private func startThreadIfNeeded(_ state: inout State) -> Bool {
        state.idleSince = nil
        guard !state.threadRunning else { return false }
        state.threadRunning = true
        return true
    }

    private func startThread() {
        DetachedThread.start(name: "amqp-tasks.watchdog") { [self] in loop() }
    }

    private func loop() {
        while true {
            let turn = state.withLock { decide(&$0, now: .now) }
            for run in turn.hard { run.hardLimitPassed() }
            for run in turn.soft { run.softLimitPassed() }
            if turn.sendProbe {
                Task.detached { [self] in state.withLock { $0.probeSent = nil } }
            }
            // The policy's owner (the worker) logs the reason with its own logger.
            if let (policy, reason) = turn.restart { policy.onRestartNeeded(reason) }
            if turn.exit { return }
            let wait = max(.zero, turn.next - .now)
            _ = wake.wait(timeout: .now() + wait.secondsValue)
        }
    }

    private func decide(_ state: inout State, now: ContinuousClock.Instant) -> Turn {
        var turn = Turn(next: now + Self.probeInterval)
        for (id, entry) in state.entries {
            if let hard = entry.hard, hard <= now {
                turn.hard.append(entry.run)
                state.entries[id]?.hard = nil
                state.entries[id]?.soft = nil
            } else if let soft = entry.soft, soft <= now {
                turn.soft.append(entry.run)
                state.entries[id]?.soft = nil
            }
        }
        let watched = state.entries.values.filter(\.isWatched)
        for deadline in watched.flatMap({ [$0.soft, $0.hard] }).compactMap({ $0 }) {
            turn.next = min(turn.next, deadline)
        }
        let abandoned = watched.compactMap(\.abandonedAt)
        let lingering = abandoned.count { now - $0 >= Self.lingerGrace }
        var starved = false
        if abandoned.isEmpty {
            state.probeSent = nil
        } else if let sent = state.probeSent {
            starved = now - sent >= Self.starvationLimit
        } else {
            state.probeSent = now
            turn.sendProbe = true
        }
        if let policy = state.policy, !state.tripped {
            if lingering > policy.maxAbandoned {
                turn.restart = (
                    policy,
                    "\(lingering) handlers the worker stopped waiting for (time limit, revoke --terminate) are still running, more than [worker] max_abandoned_handlers = \(policy.maxAbandoned): they may hold threads for ever, so the worker stops to be restarted"
                )
            } else if starved && lingering > 0 {
                turn.restart = (
                    policy,
                    "Swift's cooperative thread pool has run nothing for \(Self.starvationLimit.secondsValue) s while \(lingering) abandoned handlers still run (a handler that blocks its thread and ignores cancellation): the worker stops to be restarted"
                )
            }
            if turn.restart != nil { state.tripped = true }
        }
        if watched.isEmpty {
            let idleSince = state.idleSince ?? now
            state.idleSince = idleSince
            if now - idleSince >= Self.idleExit {
                state.threadRunning = false
                turn.exit = true
            }
        } else {
            state.idleSince = nil
        }
        return turn
    }
}

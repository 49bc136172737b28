import Synchronization

/// How many tasks one worker took into custody and how often it renewed a custody copy: for the log and the tests.
final class CustodyTally: Sendable {
    private let counts = Mutex((taken: 0, renewed: 0))

    var taken: Int { counts.withLock { $0.taken } }
    var renewed: Int { counts.withLock { $0.renewed } }

    func tookOne() { counts.withLock { $0.taken += 1 } }
    func renewedOne() { counts.withLock { $0.renewed += 1 } }
}

import AMQP
import Synchronization

/// The token of a cluster-wide rate limit that a worker's token consumer holds: delivered, not acknowledged yet.
/// Acknowledging it takes it.
struct HeldToken: Sendable {
    let delivery: Delivery
    let token: RateLimitToken
    /// The consumer channel it came on (`TokenHandout.open`): a token of a channel that has ended went back to the
    /// queue and is not handed out again.
    let epoch: Int
}

/// Hands the tokens of one task's long-lived token consumer (prefetch 1: it holds at most one) to the slots of this
/// worker that wait for one, the longest waiting first. A slot that stops waiting (a revoke, a stop) before it
/// acknowledged the token it was handed gives it back, and the next waiting slot gets it.
final class TokenHandout: Sendable {
    private struct Contents {
        /// The token delivered while no slot waited.
        var held: HeldToken?
        /// The slots waiting for a token, in the order they asked.
        var waiters: [(id: Int, continuation: CheckedContinuation<HeldToken?, Never>)] = []
        var nextWaiter = 0
        /// The consumer channel now: bumped when one opens or ends.
        var epoch = 0
        /// How many consumer channels opened.
        var openings = 0
    }

    private let contents = Mutex(Contents())

    /// A consumer channel opens: the epoch its tokens carry.
    func open() -> Int {
        contents.withLock { contents in
            contents.epoch += 1
            contents.openings += 1
            contents.held = nil
            return contents.epoch
        }
    }

    /// The consumer channel of `epoch` ended: the token it held went back to the queue.
    func close(_ epoch: Int) {
        contents.withLock { contents in
            guard contents.epoch == epoch else { return }
            contents.epoch += 1
            contents.held = nil
        }
    }

    /// The consumer received `token`: handed to the longest waiting slot, or held until one asks.
    func offer(_ token: HeldToken) {
        let handed: (CheckedContinuation<HeldToken?, Never>)? = contents.withLock { contents in
            guard contents.epoch == token.epoch else { return nil }
            guard !contents.waiters.isEmpty else {
                contents.held = token
                return nil
            }
            return contents.waiters.removeFirst().continuation
        }
        handed?.resume(returning: token)
    }

    /// A token handed to a slot that stopped waiting before it took it: offered again.
    func giveBack(_ token: HeldToken) { offer(token) }

    /// How many slots wait for a token now.
    var waiting: Int { contents.withLock { $0.waiters.count } }
    /// How many times the token consumer opened (a channel of its own each time).
    var openings: Int { contents.withLock { $0.openings } }

    /// The next token for this slot; nil once cancelled (a token handed at the same time is given back).
    func next() async -> HeldToken? {
        let id = contents.withLock { contents in
            defer { contents.nextWaiter += 1 }
            return contents.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<HeldToken?, Never>) in
                // Under the lock: a cancellation handler that runs after this finds the waiter registered, and one
                // that ran before has set `Task.isCancelled`.
                let now: HeldToken?? = contents.withLock { contents in
                    if Task.isCancelled { return .some(nil) }
                    if let held = contents.held {
                        contents.held = nil
                        return .some(held)
                    }
                    contents.waiters.append((id, continuation))
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = contents.withLock { contents in
                contents.waiters.firstIndex { $0.id == id }.map { contents.waiters.remove(at: $0).continuation }
            }
            waiter?.resume(returning: nil)
        }
    }
}

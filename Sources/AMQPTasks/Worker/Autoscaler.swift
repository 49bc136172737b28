import AMQP
import Logging

/// Celery's autoscaler for consumer slots: while an autoscale range is set (`[worker] autoscale`, `--autoscale`,
/// `celery control autoscale`), every `autoscaleInterval` it reads each queue's ready count (passive
/// `queue.declare`) and sizes the slots per queue to the largest backlog (tasks running plus ready), within the
/// range. It grows at once; it shrinks only after `autoscaleKeepalive` without a growth (Celery's
/// `AUTOSCALE_KEEPALIVE`), and the slots that retire are idle ones, so no running task is disturbed.
struct Autoscaler: Sendable {
    let slots: ConsumerSlots
    let connection: Connection
    let interval: Duration
    let keepalive: Duration
    let logger: Logger

    /// Scales until the connection is lost or the worker stops (`sleep` returns early on a stop).
    func run(isStopping: @Sendable () async -> Bool, sleep: @Sendable (Double) async -> Void) async {
        var probe: Channel?
        var lastGrowth = ContinuousClock.now
        while !Task.isCancelled, await !isStopping(), connection.isOpen {
            await sleep(interval.secondsValue)
            if Task.isCancelled || !connection.isOpen { break }
            if await isStopping() { break }
            let shape = slots.shape
            guard let range = shape.autoscale else { continue }
            var demand = 0
            for queue in shape.queues {
                do {
                    if probe == nil || probe?.isOpen == false { probe = try await connection.openChannel() }
                    let ready = Int(try await probe!.inspectQueue(queue).messageCount)
                    demand = max(demand, ready + slots.busyCount(of: queue))
                } catch {
                    // A queue deleted meanwhile (its consumers declare it again) or a lost connection: next time.
                    logger.debug("autoscale could not read the backlog of \(queue): \(error)")
                }
            }
            let target = min(max(demand, range.min), range.max)
            if target > shape.concurrency {
                lastGrowth = .now
                await slots.resize(to: target)
                logger.info("autoscale: \(target) consumers per queue (backlog \(demand), range \(range.min)-\(range.max))")
            } else if target < shape.concurrency, ContinuousClock.now - lastGrowth >= keepalive {
                // As Celery's autoscaler: shrink only once the keepalive passed since the last growth.
                lastGrowth = .now
                await slots.resize(to: target)
                logger.info("autoscale: \(target) consumers per queue (backlog \(demand), range \(range.min)-\(range.max))")
            }
        }
        if let probe, probe.isOpen, connection.isOpen { try? await probe.close() }
    }
}

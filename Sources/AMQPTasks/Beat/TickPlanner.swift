import FoundationEssentials

/// Decides which tick of one schedule to send, from the last tick sent (kept in the broker) and the clock.
///
/// Rules: a tick is sent only if it is later than the last one sent, so nothing is sent twice; when several
/// ticks were missed (every sender down, or this one late), only the latest of them is sent, once; a schedule
/// with no recorded tick starts with the first tick after the scheduler took over.
public struct TickPlanner: Sendable {
    public let timing: ScheduleTiming
    /// The last tick sent, if any is known.
    public private(set) var lastSent: Date?
    /// Ticks at or before this are never sent: the last one sent, or for a new schedule the takeover time's.
    private var floor: Date

    public init(timing: ScheduleTiming, lastSent: Date?, now: Date) {
        self.timing = timing
        self.lastSent = lastSent
        floor = lastSent ?? timing.latest(atOrBefore: now) ?? now
    }

    /// The tick to send at `now`, or nil when none is due.
    public func due(at now: Date) -> Date? {
        guard let tick = timing.latest(atOrBefore: now), tick > floor else { return nil }
        return tick
    }

    /// Records that `tick` was sent.
    public mutating func sent(_ tick: Date) {
        floor = max(floor, tick)
        lastSent = floor
    }

    /// When the next tick after `now` is due (nil: never again).
    public func nextTick(after now: Date) -> Date? {
        timing.next(after: max(now, floor))
    }
}

import FoundationEssentials

/// When a schedule fires: every N seconds on a grid anchored at the Unix epoch (so every instance computes the
/// same ticks: `every = "5m"` fires at :00, :05, :10… UTC), or by a cron expression in a time zone.
public enum ScheduleTiming: Sendable, Hashable, CustomStringConvertible {
    /// Every this many seconds (at least 1).
    case every(seconds: Int)
    case cron(CronExpression)

    /// The first tick strictly after `date`.
    public func next(after date: Date) -> Date? {
        switch self {
        case .every(let seconds):
            let now = Int(date.timeIntervalSince1970.rounded(.down))
            return Date(timeIntervalSince1970: Double(LocalTime.floorDiv(now, seconds) * seconds + seconds))
        case .cron(let cron):
            return cron.next(after: date)
        }
    }

    /// The last tick at or before `date`.
    public func latest(atOrBefore date: Date) -> Date? {
        switch self {
        case .every(let seconds):
            let now = Int(date.timeIntervalSince1970.rounded(.down))
            return Date(timeIntervalSince1970: Double(LocalTime.floorDiv(now, seconds) * seconds))
        case .cron(let cron):
            return cron.latest(atOrBefore: date)
        }
    }

    /// `every 30s` or `cron */5 * * * * (Europe/Paris)`, for logs and `amqp-task schedules`.
    public var description: String {
        switch self {
        case .every(let seconds): "every \(DurationText.format(seconds: seconds))"
        case .cron(let cron): "cron \(cron)"
        }
    }
}

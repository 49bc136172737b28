import AMQP
import FoundationEssentials

/// How many tasks of one name a worker starts per second at most: Celery's `rate_limit` (`"10/s"`, `"100/m"`,
/// `"2/h"`, or a bare number of tasks per second). Zero, like Celery's `0` or `None`, means no limit.
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    /// Tasks per second (positive).
    public let perSecond: Double

    /// A limit of `perSecond` tasks a second; nil for zero (no limit). Negative or non-finite rates are refused.
    public init?(perSecond: Double) {
        guard perSecond.isFinite, perSecond > 0 else { return nil }
        self.perSecond = perSecond
    }

    /// Parses Celery's syntax: `N`, `N/s`, `N/m` or `N/h` with N a non-negative number. Returns nil for a zero
    /// rate (no limit); throws `RateLimitSyntaxError` for anything else.
    public static func parse(_ text: String) throws -> RateLimit? {
        let trimmed = text.trimmingWhitespace()
        if trimmed.isEmpty { return nil }
        let parts = trimmed.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let unit: Double
        switch parts.count == 2 ? String(parts[1]) : "s" {
        case "s": unit = 1
        case "m": unit = 60
        case "h": unit = 3600
        default: throw RateLimitSyntaxError(text: text)
        }
        guard let count = Double(parts[0]), count.isFinite, count >= 0 else { throw RateLimitSyntaxError(text: text) }
        return RateLimit(perSecond: count / unit)
    }

    /// The time between two task starts.
    public var interval: Duration { .nanoseconds(Int64(min(1e9 / perSecond, 1e18))) }

    public var description: String {
        perSecond >= 1 || perSecond * 60 != (perSecond * 60).rounded()
            ? "\(Self.number(perSecond))/s" : "\(Self.number(perSecond * 60))/m"
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// A rate limit that is not Celery's `N`, `N/s`, `N/m` or `N/h`.
public struct RateLimitSyntaxError: Error, CustomStringConvertible {
    /// The text that was given.
    public let text: String
    public var description: String {
        "expected a rate such as \"10/s\", \"100/m\" or \"2/h\" (0 for no limit), got \"\(text)\""
    }
}

/// Who keeps a task's `rate_limit` (`[tasks."NAME"] rate_limit_scope`): each worker on its own (`worker`, the
/// default, as Celery), or all workers together (`cluster`, through tokens kept in the broker: see
/// `ClusterRateLimits`).
public enum RateLimitScope: String, Sendable, Hashable {
    case worker
    case cluster
}

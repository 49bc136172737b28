import FoundationEssentials

/// `[routes]`: a task-name pattern and where matching tasks go.
public struct Route: Sendable, Hashable {
    /// `*` matches within one dot-separated part, `**` across parts: `mail.*` matches `mail.send`,
    /// `reports.**` matches `reports.monthly.pdf`.
    public var pattern: String
    public var target: RouteTarget

    public init(pattern: String, target: RouteTarget) {
        self.pattern = pattern
        self.target = target
    }

    /// True when `taskName` matches the pattern.
    public func matches(_ taskName: String) -> Bool { Glob.matches(pattern, taskName) }
}

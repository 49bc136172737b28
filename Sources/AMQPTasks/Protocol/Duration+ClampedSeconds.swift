extension Duration {
    /// `seconds` (a number from a message or a file) as a `Duration`, never trapping: not-a-number and negative values
    /// give zero, values beyond a century give a century (`Duration.seconds(_:)` traps on values it cannot represent).
    public static func clampedSeconds(_ seconds: Double) -> Duration {
        guard seconds.isFinite else { return seconds > 0 ? .seconds(3_153_600_000) : .zero }
        return .seconds(min(max(seconds, 0), 3_153_600_000))
    }
}

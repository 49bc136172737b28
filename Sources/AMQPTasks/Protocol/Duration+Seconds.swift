extension Duration {
    /// The duration in seconds, fractions included: for logs and for APIs that take seconds.
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

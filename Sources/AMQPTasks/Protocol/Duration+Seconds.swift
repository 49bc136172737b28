extension Duration {
    /// The duration as a number of seconds, fractions included: for logs and for the places that compute with
    /// `Double` inside.
    public var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

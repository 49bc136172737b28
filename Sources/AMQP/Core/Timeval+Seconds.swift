#if canImport(Glibc)
    import Glibc
#endif

extension timeval {
    /// `seconds` as a `timeval`, for rabbitmq-c's timeouts.
    init(seconds: Double) {
        let whole = seconds.rounded(.down)
        self.init(tv_sec: Int(whole), tv_usec: Int((seconds - whole) * 1_000_000))
    }
}

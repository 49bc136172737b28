import Metrics

/// What a `TaskClient` reports through swift-metrics (the names are in `TaskMetricNames`): tasks the broker confirmed
/// or refused, how long confirms took, and publishes repeated after a lost connection.
struct ClientMetrics: Sendable {
    let factory: any MetricsFactory

    /// One publish of `count` messages (a `send` is a batch of one) came back from the broker after `latency`.
    func published(confirmed: Int, refused: Int, latency: Duration) {
        Timer(label: TaskMetricNames.clientConfirmLatency, factory: factory).record(duration: latency)
        if confirmed > 0 {
            Counter(label: TaskMetricNames.clientSends, dimensions: [("outcome", "confirmed")], factory: factory)
                .increment(by: confirmed)
        }
        if refused > 0 {
            Counter(label: TaskMetricNames.clientSends, dimensions: [("outcome", "refused")], factory: factory)
                .increment(by: refused)
        }
    }

    /// A message was confirmed on a later attempt than its first: it was published again.
    func republished() {
        Counter(label: TaskMetricNames.clientRepublishes, factory: factory).increment()
    }
}

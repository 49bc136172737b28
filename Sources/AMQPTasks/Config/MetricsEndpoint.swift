/// Where `amqp-worker` serves `GET /metrics` (Prometheus text format) and `GET /healthz`: `[worker] metrics_port`
/// and `metrics_host`, or `--metrics-port` and `--metrics-host`. Off unless a port is given.
public struct MetricsEndpoint: Sendable, Equatable {
    /// The address to listen on; loopback by default, so metrics are not exposed beyond the machine unless asked.
    public var host: String
    /// The TCP port, 1 to 65535.
    public var port: Int

    public static let defaultHost = "127.0.0.1"

    public init(host: String = Self.defaultHost, port: Int) {
        self.host = host
        self.port = port
    }
}

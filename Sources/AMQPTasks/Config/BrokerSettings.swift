import AMQP
import FoundationEssentials

/// `[broker]`: where the broker is and how to talk to it, as the typed connection configurations a worker or client
/// opens (`Connection.open(anyOf:)`), one per broker URL.
///
/// The section's own options (`heartbeat`, `connection_timeout`, `ca_file`, `cert_file`, `key_file`) are kept apart
/// from the addresses, so `AMQP_URL` or `--url` (`replaceAddresses(withURLs:)`) changes only where the broker is and
/// who logs in, never how the connection is made.
public struct BrokerSettings: Sendable, Hashable {
    /// The default broker: RabbitMQ on this host, as user guest.
    public static let defaultURL = "amqp://guest:guest@127.0.0.1:5672/%2f"

    /// The brokers, in the order they are tried (the nodes of a cluster); each with this section's options.
    public private(set) var connections: [ConnectionConfiguration]
    /// The URL text the addresses came from (comma-separated when several), password included: show `maskedURL`.
    public private(set) var url: String
    /// Heartbeat interval (whole seconds on the wire); nil keeps the URL's, else RabbitMQ's default 60 s.
    public private(set) var heartbeat: Duration?
    /// How long the TCP/TLS connect and the AMQP handshake may take; nil keeps the URL's, else 30 s.
    public private(set) var connectionTimeout: Duration?
    /// PEM file of the CA certificates that may sign the broker's certificate (`amqps://`).
    public private(set) var caFile: String?
    /// PEM client certificate, for brokers that ask for one.
    public private(set) var certFile: String?
    /// PEM private key of the client certificate.
    public private(set) var keyFile: String?

    /// The default broker (`defaultURL`) with RabbitMQ's defaults.
    public init() {
        url = Self.defaultURL
        connections = [Self.defaultConnection]
    }

    /// The settings `[broker]` can hold. `url` is one URL or several comma-separated; the URL's own query options
    /// (`?heartbeat=…`) win over the ones given here. Throws `AMQPError` (`.invalidArgument`) naming a bad URL, or
    /// saying that TLS files were given for an `amqp://` URL.
    public init(
        url: String = Self.defaultURL, heartbeat: Duration? = nil, connectionTimeout: Duration? = nil,
        caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil
    ) throws {
        self.url = url
        self.heartbeat = heartbeat
        self.connectionTimeout = connectionTimeout
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        connections = []
        try Self.check(heartbeat: heartbeat, connectionTimeout: connectionTimeout)
        connections = try ConnectionConfiguration.list(url, over: options)
        try checkTLSFilesHaveTLS()
    }

    /// The same ranges as the file's keys and the URL options: heartbeat 0 to 65535 s, connection timeout 1 ms to
    /// a day.
    private static func check(heartbeat: Duration?, connectionTimeout: Duration?) throws {
        let limits = ConnectionConfiguration.OptionLimits.self
        if let heartbeat, !limits.heartbeat.contains(heartbeat.secondsValue.rounded()) {
            throw AMQPError(
                .invalidArgument, operation: "configure",
                message: "heartbeat must be from 0 to 65535 seconds (0 turns heartbeats off), got \(heartbeat)")
        }
        if let connectionTimeout, !limits.connectionTimeout.contains(connectionTimeout.secondsValue * 1000) {
            throw AMQPError(
                .invalidArgument, operation: "configure",
                message: "connectionTimeout must be from 1 ms to 86400 seconds, got \(connectionTimeout)")
        }
    }

    /// Points at other brokers: addresses and credentials (and the URL's own query options) come from `urls`,
    /// heartbeat, connection timeout and TLS files stay this section's. This is what `AMQP_URL` and `--url` do.
    /// Throws `AMQPError` (`.invalidArgument`) naming the bad URL, or saying that this section's TLS files need
    /// `amqps://` URLs; nothing changes then.
    public mutating func replaceAddresses(withURLs urls: String) throws {
        var replaced = self
        replaced.url = urls
        replaced.connections = try ConnectionConfiguration.list(urls, over: options)
        try replaced.checkTLSFilesHaveTLS()
        self = replaced
    }

    /// The URL(s) with passwords masked, for output.
    public var maskedURL: String {
        // The whole text at once: a comma may also be part of a password.
        ConnectionConfiguration.masked(url)
    }

    /// The section's options as a connection configuration that URLs are parsed over.
    public var options: ConnectionConfiguration {
        var base = ConnectionConfiguration()
        if let heartbeat { base.heartbeat = .seconds(heartbeat.secondsValue.rounded()) }
        if let connectionTimeout { base.connectionTimeout = connectionTimeout }
        if caFile != nil || certFile != nil || keyFile != nil {
            base.tls = TLSConfiguration(caFile: caFile, certificateFile: certFile, keyFile: keyFile)
        }
        return base
    }

    static let defaultConnection: ConnectionConfiguration = {
        var connection = ConnectionConfiguration()
        connection.host = "127.0.0.1"
        return connection
    }()

    /// TLS files with a plain `amqp://` broker URL in the same section are a mistake: they would be ignored.
    private func checkTLSFilesHaveTLS() throws {
        guard caFile != nil || certFile != nil || keyFile != nil else { return }
        for (text, connection) in zip(ConnectionConfiguration.urls(in: url), connections) where connection.tls == nil {
            throw AMQPError(
                .invalidArgument, operation: "parse URL",
                message: "\(ConnectionConfiguration.masked(text)): ca_file, cert_file and key_file need an amqps:// URL")
        }
    }

    /// For the loader, which has parsed and checked each part and reported its own errors.
    init(
        checkedURL url: String, connections: [ConnectionConfiguration], heartbeat: Duration?,
        connectionTimeout: Duration?, caFile: String?, certFile: String?, keyFile: String?
    ) {
        self.url = url
        self.connections = connections
        self.heartbeat = heartbeat
        self.connectionTimeout = connectionTimeout
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }
}

import FoundationEssentials

/// Everything needed to open a connection, with RabbitMQ's defaults documented at each property.
///
/// Usually made from a URL: `amqp://user:password@host:port/vhost?heartbeat=10&connection_timeout=5000`, or
/// `amqps://…?cacertfile=/path/ca.pem&certfile=/path/client.pem&keyfile=/path/client.key`, following
/// RabbitMQ's URI spec (`%2f` in the path is the vhost `/`; an empty path is also `/`).
public struct ConnectionConfiguration: Sendable, Hashable {
    public var host: String = "localhost"
    /// 5672 for `amqp://`, 5671 for `amqps://`.
    public var port: Int = 5672
    public var vhost: String = "/"
    public var user: String = "guest"
    public var password: String = "guest"
    /// Time between heartbeats; zero turns them off. 60 s by default, RabbitMQ's own default. AMQP carries it as
    /// whole seconds (rounded to the nearest, from 0 to 65535: opening a connection with any other value fails with
    /// `.invalidArgument`; `heartbeat` in the URL is in seconds). The I/O thread sends heartbeats even while
    /// handlers run for minutes; a peer silent for two intervals is taken as gone.
    public var heartbeat: Duration = .seconds(60)
    /// How long the TCP (and TLS) connect and the AMQP handshake may take; 30 s by default (`connection_timeout`
    /// in the URL is in milliseconds, as in RabbitMQ's URI spec).
    public var connectionTimeout: Duration = .seconds(30)
    /// How long a synchronous AMQP method (declare, bind, qos, consume…) may wait for its answer; 60 s by default.
    public var operationTimeout: Duration = .seconds(60)
    /// 0 lets the server choose (RabbitMQ: 2047).
    public var channelMax: Int = 0
    /// The largest frame this connection proposes, in bytes (`frame_max` in the URL). The broker answers with its
    /// own limit and the connection uses the smaller of the two (or ours when the broker says 0, no limit).
    ///
    /// By default `defaultFrameMax` (1 MiB), so the connection takes the broker's own limit (RabbitMQ's default is
    /// 131,072 bytes; only a broker configured above 1 MiB, or with no limit, is held at 1 MiB). rabbitmq-c keeps one
    /// output buffer of the negotiated size per connection, so this costs nothing more than 131,072 did against a
    /// broker at its default. A smaller value splits bodies into smaller frames and limits the properties and
    /// headers of a message this connection may publish. It does not apply to a connection that `consumes`.
    public var frameMax: Int = ConnectionConfiguration.defaultFrameMax
    /// Set for a connection that consumes (a worker's, a task client's reading results): it then proposes at least
    /// `defaultFrameMax` whatever `frameMax` says, and logs a warning when that overrides a smaller `frameMax`.
    ///
    /// AMQP never splits a message's content header (all its properties and headers): the broker delivers it in one
    /// frame as large as its publisher made it, up to the publisher's frame size, even above this connection's.
    /// rabbitmq-c drops a connection that receives a frame larger than its own `frame_max`, and the broker then
    /// redelivers the same message to the next connection, which drops it again: a loop in which the message is
    /// never handled. A consuming connection must accept every frame the broker accepts from its publishers.
    public var consumes: Bool = false
    /// What a connection proposes by default as its `frame_max`: 1 MiB (1,048,576 bytes).
    public static let defaultFrameMax = 1 << 20

    /// This configuration with `consumes` set, for a connection that consumes.
    public var consuming: ConnectionConfiguration {
        var configuration = self
        configuration.consumes = true
        return configuration
    }

    /// The `frame_max` this connection proposes at login: `frameMax`, raised to `defaultFrameMax` for a
    /// connection that `consumes`.
    var proposedFrameMax: Int { consumes ? max(frameMax, Self.defaultFrameMax) : frameMax }
    /// TLS settings; set for `amqps://`.
    public var tls: TLSConfiguration?
    /// SASL mechanism: PLAIN (user and password) or EXTERNAL (identity from the TLS client certificate).
    public var authMechanism: AuthMechanism = .plain
    /// Shown in RabbitMQ's management UI and `rabbitmqctl list_connections name`.
    public var connectionName: String?

    /// SASL mechanisms rabbitmq-c supports.
    public enum AuthMechanism: String, Sendable, Hashable {
        case plain = "PLAIN"
        case external = "EXTERNAL"
    }

    public init() {}

    /// Parses an `amqp://` or `amqps://` URL; throws `AMQPError` (`.invalidArgument`) saying which part is wrong.
    public init(url: String) throws {
        try self.init(url: url, over: ConnectionConfiguration())
    }

    /// Parses a URL over `base`: the URL gives the address and credentials (scheme, host, port, vhost, user and
    /// password, with their defaults for parts it leaves out) and any query options it has; everything else
    /// (heartbeat, timeouts, frame and channel limits, TLS files, auth mechanism, connection name) stays `base`'s.
    ///
    /// This is how `--url` or `AMQP_URL` replaces where a configuration file points without losing the file's
    /// heartbeat, timeouts or TLS files. An `amqp://` URL means a plain connection: `base`'s TLS settings do not
    /// apply to it. Throws `AMQPError` (`.invalidArgument`) naming the URL (password masked) and the wrong part.
    public init(url: String, over base: ConnectionConfiguration) throws {
        self = base
        host = "localhost"
        vhost = "/"
        user = "guest"
        password = "guest"
        tls = nil
        func invalid(_ why: String) -> AMQPError {
            AMQPError(
                .invalidArgument, operation: "parse URL", message: "\(Self.masked(url)): \(why)",
                hint: "expected amqp://user:password@host:port/vhost?heartbeat=SECONDS")
        }
        guard let components = URLComponents(string: url) else { throw invalid("not a URL") }
        switch components.scheme?.lowercased() {
        case "amqp": port = 5672
        case "amqps":
            port = 5671
            tls = base.tls ?? TLSConfiguration()
        default: throw invalid("the scheme must be amqp or amqps")
        }
        if let host = components.host, !host.isEmpty { self.host = host }
        if let port = components.port { self.port = port }
        if let user = components.user { self.user = user.percentDecoded ?? user }
        if let password = components.password { self.password = password.percentDecoded ?? password }
        let path = components.percentEncodedPath
        if path.isEmpty || path == "/" {
            vhost = "/"
        } else {
            let raw = String(path.dropFirst())
            guard !raw.contains("/") else { throw invalid("the vhost must be one path segment; write / as %2f") }
            guard let decoded = raw.percentDecoded else { throw invalid("bad percent-encoding in vhost") }
            vhost = decoded
        }
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            /// The option as a number within `limits`; huge, infinite and NaN values are errors, never traps.
            func number(_ limits: ClosedRange<Double>, unit: String, whole: Bool = true) throws -> Double {
                guard let n = Double(value), n.isFinite, limits.contains(n), !whole || n == n.rounded() else {
                    throw invalid(
                        "\(item.name) must be a \(whole ? "whole number" : "number") from \(Int(limits.lowerBound)) to \(Int(limits.upperBound))\(unit), got '\(value)'"
                    )
                }
                return n
            }
            switch item.name {
            case "heartbeat":
                heartbeat = .seconds(Int(try number(OptionLimits.heartbeat, unit: " (seconds; 0 turns heartbeats off)")))
            case "connection_timeout":
                connectionTimeout = .milliseconds(
                    try number(OptionLimits.connectionTimeout, unit: " (milliseconds)", whole: false))
            case "channel_max": channelMax = Int(try number(OptionLimits.channelMax, unit: " (0 lets the broker choose)"))
            case "frame_max": frameMax = Int(try number(OptionLimits.frameMax, unit: " (bytes)"))
            case "auth_mechanism":
                guard let m = AuthMechanism(rawValue: value.uppercased()) else {
                    throw invalid("auth_mechanism must be plain or external")
                }
                authMechanism = m
            case "cacertfile", "certfile", "keyfile", "verify", "server_name_indication":
                var t = tls ?? TLSConfiguration()
                switch item.name {
                case "cacertfile": t.caFile = value
                case "certfile": t.certificateFile = value
                case "keyfile": t.keyFile = value
                case "verify":
                    guard value == "verify_peer" || value == "verify_none" else {
                        throw invalid("verify must be verify_peer or verify_none")
                    }
                    t.verifyPeer = value == "verify_peer"
                    t.verifyHostname = t.verifyPeer
                default: break
                }
                tls = t
            case "name": connectionName = value
            default: throw invalid("unknown query option '\(item.name)'")
            }
        }
        if tls != nil, components.scheme?.lowercased() == "amqp" {
            throw invalid("TLS options need an amqps:// URL")
        }
    }

    /// The URLs in a comma-separated list (the nodes of a cluster, as `AMQP_URL` and `[broker] url` allow), trimmed,
    /// empty entries dropped. The one place such a list is split.
    public static func urls(in list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    /// Each URL of a comma-separated list parsed over `base` (see `init(url:over:)`), in order.
    /// Throws `AMQPError` (`.invalidArgument`) naming the first URL that is wrong, or saying the list is empty.
    public static func list(
        _ urls: String, over base: ConnectionConfiguration = ConnectionConfiguration()
    ) throws -> [ConnectionConfiguration] {
        let each = Self.urls(in: urls)
        guard !each.isEmpty else {
            throw AMQPError(
                .invalidArgument, operation: "parse URL", message: "no broker URL given",
                hint: "expected amqp://user:password@host:port/vhost, several separated by commas")
        }
        return try each.map { try ConnectionConfiguration(url: $0, over: base) }
    }

    /// The allowed ranges of the numeric URL options.
    public enum OptionLimits {
        /// Seconds; AMQP carries the heartbeat as a 16-bit number.
        public static let heartbeat: ClosedRange<Double> = 0...65535
        /// Milliseconds: up to a day.
        public static let connectionTimeout: ClosedRange<Double> = 1...86_400_000
        /// AMQP carries the channel limit as a 16-bit number.
        public static let channelMax: ClosedRange<Double> = 0...65535
        /// AMQP's smallest frame to rabbitmq-c's largest.
        public static let frameMax: ClosedRange<Double> = 4096...2_147_483_647
    }

    /// The text with every password in it replaced by `***`, for logs and error messages.
    ///
    /// Works on the text itself rather than on what Foundation's URL parser makes of it, so it also masks URLs that
    /// parser refuses or misreads (a password with `/`, `?`, `#`, `@`, `[`, `%` or a comma in it, a bad port, no
    /// host) and several comma-separated URLs: in each `scheme://user:password@host…` everything between the first
    /// `:` after `//` and the last `@` before the next URL is masked; without `@`, whatever follows `user:` unless it
    /// is a port number; and in text with no scheme, everything before its last `@`.
    public static func masked(_ text: String) -> String {
        URLMasker.mask(text)
    }

    /// A description for logs, never with the password.
    public var redactedDescription: String {
        "\(tls == nil ? "amqp" : "amqps")://\(user)@\(host):\(port)/\(vhost == "/" ? "%2f" : vhost)"
    }
}

/// TLS settings for `amqps://` connections. Peer and host name verification are on by default.
public struct TLSConfiguration: Sendable, Hashable {
    /// PEM file with the CA certificates that may sign the server's certificate.
    public var caFile: String?
    /// PEM client certificate, for brokers that ask for one (and for SASL EXTERNAL).
    public var certificateFile: String?
    /// PEM private key of the client certificate.
    public var keyFile: String?
    /// Check the server's certificate chain against `caFile`. Turning this off makes TLS open to interception.
    public var verifyPeer: Bool = true
    /// Check that the server's certificate names the host connected to.
    public var verifyHostname: Bool = true

    public init(
        caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, verifyPeer: Bool = true,
        verifyHostname: Bool = true
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.verifyPeer = verifyPeer
        self.verifyHostname = verifyHostname
    }
}

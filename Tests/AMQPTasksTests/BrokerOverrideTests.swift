import AMQP
import AMQPTasks
import Foundation
import Testing

/// `[broker]` makes typed connection configurations, and `AMQP_URL`/`--url` (`replaceAddresses(withURLs:)`)
/// change only where the broker is and who logs in. No broker needed.
@Suite struct BrokerOverrideTests {
    static let file = """
        [broker]
        url = "amqps://file:file-secret@file-host:1/%2f"
        heartbeat = 7
        connection_timeout = 2.5
        ca_file = "/tls/ca.pem"
        cert_file = "/tls/client.pem"
        key_file = "/tls/client.key"
        """
    static let tls = TLSConfiguration(caFile: "/tls/ca.pem", certificateFile: "/tls/client.pem", keyFile: "/tls/client.key")

    @Test func theSectionGivesTypedConnections() throws {
        let c = try TasksConfiguration.parse(Self.file, file: "t.toml", environment: [:])
        let connection = try #require(c.broker.connections.first)
        #expect(c.broker.connections.count == 1)
        #expect(connection.host == "file-host" && connection.port == 1 && connection.user == "file")
        #expect(connection.heartbeat == .seconds(7) && connection.connectionTimeout == .milliseconds(2500) && connection.tls == Self.tls)
    }

    @Test func replacingTheAddressesKeepsHeartbeatTimeoutAndTLSFiles() throws {
        var broker = try TasksConfiguration.parse(Self.file, file: "t.toml", environment: [:]).broker
        try broker.replaceAddresses(withURLs: "amqps://u:p@h1:5001/v1,amqps://h2")
        #expect(broker.connections.map(\.host) == ["h1", "h2"])
        #expect(broker.connections.map(\.port) == [5001, 5671])
        #expect(broker.connections.map(\.vhost) == ["v1", "/"])
        #expect(broker.connections.map(\.user) == ["u", "guest"])
        #expect(broker.connections.map(\.password) == ["p", "guest"])
        #expect(broker.connections.allSatisfy { $0.heartbeat == .seconds(7) && $0.connectionTimeout == .milliseconds(2500) && $0.tls == Self.tls })
        #expect(broker.heartbeat == .seconds(7) && broker.caFile == "/tls/ca.pem", "the section's own settings stay")
        #expect(broker.maskedURL == "amqps://u:***@h1:5001/v1,amqps://h2")
    }

    @Test func amqpURLInTheEnvironmentKeepsTheFilesSettingsToo() throws {
        let c = try TasksConfiguration.parse(Self.file, file: "t.toml", environment: ["AMQP_URL": "amqps://e:e@env-host"])
        #expect(c.broker.connections.map(\.host) == ["env-host"])
        #expect(c.broker.connections.allSatisfy { $0.heartbeat == .seconds(7) && $0.tls == Self.tls })
    }

    @Test func theWorkerOfAFileReplacesOnlyTheAddresses() throws {
        // What `amqp-worker --config F --url URL` does.
        var worker = WorkerConfiguration(configuration: try TasksConfiguration.parse(Self.file, file: "t.toml", environment: [:]))
        try worker.broker.replaceAddresses(withURLs: "amqps://guest:guest@localhost:5671/%2f")
        #expect(worker.broker.connections.map(\.heartbeat) == [.seconds(7)])
        #expect(worker.broker.connections.map(\.tls) == [Self.tls])
    }

    @Test func aBadReplacementURLIsNamedAndChangesNothing() throws {
        var broker = try TasksConfiguration.parse(Self.file, file: "t.toml", environment: [:]).broker
        let before = broker
        let error = #expect(throws: AMQPError.self) {
            try broker.replaceAddresses(withURLs: "amqps://ok@h1,amqps://u:secret@h2:notaport")
        }
        #expect(error?.message.hasPrefix("amqps://u:***@h2:notaport: ") == true, "\(String(describing: error))")
        #expect(broker == before)
    }

    @Test func aBadAMQPURLInTheEnvironmentIsAConfigErrorNamingTheVariable() {
        let errors = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse(Self.file, file: "t.toml", environment: ["AMQP_URL": "http://u:secret@h/"])
        }
        #expect(errors?.description == "environment: AMQP_URL: http://u:***@h/: the scheme must be amqp or amqps")
    }

    @Test func tlsFilesWithAPlainURLAreAnErrorNotIgnored() {
        let errors = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse("[broker]\nurl = \"amqp://h\"\nca_file = \"/ca.pem\"\n", file: "t.toml", environment: [:])
        }
        #expect(errors?.description == "t.toml:2: broker.url: amqp://h: ca_file, cert_file and key_file need an amqps:// URL")
    }

    @Test func severalURLsInTheFileAreOneConnectionEach() throws {
        let c = try TasksConfiguration.parse(
            "[broker]\nurls = [\"amqp://a:1@h1:5001\", \"amqp://h2?heartbeat=3\"]\nheartbeat = 9\n", file: "t.toml",
            environment: [:])
        #expect(c.broker.connections.map(\.host) == ["h1", "h2"])
        #expect(c.broker.connections.map(\.heartbeat) == [.seconds(9), .seconds(3)], "a URL's own option wins over the section's")
    }
}

extension BrokerOverrideTests {
    @Test func aPlainReplacementURLWithTheFilesTLSFilesIsAnError() throws {
        // The file asks for TLS; a plain amqp:// URL would silently drop it.
        var broker = try TasksConfiguration.parse(Self.file, file: "t.toml", environment: [:]).broker
        let error = #expect(throws: AMQPError.self) { try broker.replaceAddresses(withURLs: "amqp://u:secret@h") }
        #expect(error?.message == "amqp://u:***@h: ca_file, cert_file and key_file need an amqps:// URL")
        #expect(broker.connections.map(\.host) == ["file-host"])
    }

    @Test func durationsOutOfRangeInSwiftAreRefused() {
        #expect(throws: AMQPError.self) { try BrokerSettings(heartbeat: .seconds(70000)) }
        #expect(throws: AMQPError.self) { try BrokerSettings(heartbeat: .seconds(-1)) }
        #expect(throws: AMQPError.self) { try BrokerSettings(connectionTimeout: .zero) }
        #expect((try? BrokerSettings(heartbeat: .seconds(7)))?.connections.map(\.heartbeat) == [.seconds(7)])
    }
}

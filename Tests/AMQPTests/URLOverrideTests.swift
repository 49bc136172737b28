import AMQP
import Testing

/// `ConnectionConfiguration(url:over:)` and `list(_:over:)`: a URL gives the address and credentials, the base keeps
/// the rest. No broker needed.
@Suite struct URLOverrideTests {
    /// A base as a configuration file makes it: heartbeat, timeouts, limits and TLS files set.
    static let base: ConnectionConfiguration = {
        var base = ConnectionConfiguration()
        base.host = "file-host"
        base.port = 1234
        base.vhost = "file-vhost"
        base.user = "file-user"
        base.password = "file-password"
        base.heartbeat = .seconds(7)
        base.connectionTimeout = .milliseconds(2500)
        base.operationTimeout = .seconds(9)
        base.channelMax = 12
        base.frameMax = 8192
        base.tls = TLSConfiguration(caFile: "/ca.pem", certificateFile: "/client.pem", keyFile: "/client.key")
        base.connectionName = "named"
        return base
    }()

    @Test func theURLReplacesAddressAndCredentialsAndKeepsTheRest() throws {
        let c = try ConnectionConfiguration(url: "amqps://u:p@other:5999/v", over: Self.base)
        #expect(c.host == "other" && c.port == 5999 && c.vhost == "v" && c.user == "u" && c.password == "p")
        #expect(c.heartbeat == .seconds(7) && c.connectionTimeout == .milliseconds(2500) && c.operationTimeout == .seconds(9))
        #expect(c.channelMax == 12 && c.frameMax == 8192 && c.connectionName == "named")
        #expect(c.tls == Self.base.tls, "the TLS files stay")
    }

    @Test func partsTheURLLeavesOutTakeTheirDefaultsNotTheBases() throws {
        let c = try ConnectionConfiguration(url: "amqps://other", over: Self.base)
        #expect(c.port == 5671 && c.vhost == "/" && c.user == "guest" && c.password == "guest")
        #expect(c.heartbeat == .seconds(7))
    }

    @Test func theURLsOwnQueryOptionsWin() throws {
        let c = try ConnectionConfiguration(url: "amqps://other?heartbeat=3&cacertfile=/mine.pem", over: Self.base)
        #expect(c.heartbeat == .seconds(3))
        #expect(c.tls?.caFile == "/mine.pem")
        #expect(c.tls?.certificateFile == "/client.pem", "options the URL does not give stay the base's")
    }

    @Test func aPlainURLIsAPlainConnection() throws {
        let c = try ConnectionConfiguration(url: "amqp://other", over: Self.base)
        #expect(c.tls == nil && c.port == 5672 && c.heartbeat == .seconds(7))
    }

    @Test func withoutABaseItIsTheURLAlone() throws {
        #expect(try ConnectionConfiguration(url: "amqp://h?heartbeat=5", over: ConnectionConfiguration())
            == ConnectionConfiguration(url: "amqp://h?heartbeat=5"))
    }

    @Test func aListSplitsOnCommasInOrderEachOverTheBase() throws {
        let list = try ConnectionConfiguration.list(" amqps://a:1@h1:5001 ,amqps://b:2@h2:5002,, ", over: Self.base)
        #expect(list.map(\.host) == ["h1", "h2"])
        #expect(list.map(\.port) == [5001, 5002])
        #expect(list.map(\.user) == ["a", "b"])
        #expect(list.allSatisfy { $0.heartbeat == .seconds(7) && $0.tls == Self.base.tls })
        #expect(ConnectionConfiguration.urls(in: "amqp://a, amqp://b,") == ["amqp://a", "amqp://b"])
    }

    @Test func aBadURLInAListIsNamedWithItsPasswordMasked() {
        let error = #expect(throws: AMQPError.self) {
            try ConnectionConfiguration.list("amqp://ok@h1,http://u:secret@h2/", over: Self.base)
        }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.message == "http://u:***@h2/: the scheme must be amqp or amqps", "\(String(describing: error))")
    }

    @Test func anEmptyListIsAnError() {
        let error = #expect(throws: AMQPError.self) { try ConnectionConfiguration.list(" , ") }
        #expect(error?.message == "no broker URL given")
    }
}

import AMQP
import Testing

/// `Connection.open(anyOf:)` with typed configurations, against the local broker.
@Suite struct OpenAnyOfTests {
    static func reachable(heartbeat: Duration = .seconds(60)) throws -> ConnectionConfiguration {
        var configuration = try ConnectionConfiguration(url: TestBroker.url)
        configuration.heartbeat = heartbeat
        return configuration
    }

    static func unreachable() throws -> ConnectionConfiguration {
        var configuration = try ConnectionConfiguration(url: "amqp://guest:guest@127.0.0.1:1/%2f")
        configuration.connectionTimeout = .seconds(2)
        return configuration
    }

    @Test func triesEachInTurnAndKeepsEachConfigurationsSettings() async throws {
        let connection = try await Connection.open(
            anyOf: [Self.unreachable(), Self.reachable(heartbeat: .seconds(9))], connectionName: "test: anyOf")
        #expect(connection.configuration.port == TestBroker.port)
        #expect(connection.configuration.heartbeat == .seconds(9))
        #expect(connection.configuration.connectionName == "test: anyOf")
        await connection.close()
    }

    @Test func startingAtWrapsAroundTheList() async throws {
        let connection = try await Connection.open(anyOf: [Self.reachable(), Self.unreachable()], startingAt: 3)
        #expect(connection.configuration.port == TestBroker.port)
        await connection.close()
    }

    @Test func noBrokerAnsweringNamesEachWithoutItsPassword() async throws {
        var other = try Self.unreachable()
        other.port = 2
        other.password = "S3cr3t"
        let error = await #expect(throws: AMQPError.self) {
            try await Connection.open(anyOf: [Self.unreachable(), other])
        }
        #expect(error?.message.contains("127.0.0.1:1") == true && error?.message.contains("127.0.0.1:2") == true)
        #expect(error?.message.contains("S3cr3t") == false)
    }

    @Test func anEmptyListIsAnInvalidArgument() async {
        let error = await #expect(throws: AMQPError.self) {
            try await Connection.open(anyOf: [ConnectionConfiguration]())
        }
        #expect(error?.kind == .invalidArgument)
    }
}

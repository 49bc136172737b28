@testable import AMQP
import Testing

/// `ConnectionConfiguration.heartbeat` is a `Duration`; AMQP carries whole seconds from 0 to 65535.
@Suite struct HeartbeatOnTheWireTests {
    static func configuration(heartbeat: Duration) -> ConnectionConfiguration {
        var configuration = ConnectionConfiguration()
        configuration.heartbeat = heartbeat
        return configuration
    }

    @Test func theHeartbeatIsRoundedToWholeSeconds() {
        #expect(Self.configuration(heartbeat: .milliseconds(1600)).heartbeatOnTheWire == 2)
        #expect(Self.configuration(heartbeat: .milliseconds(1400)).heartbeatOnTheWire == 1)
        #expect(Self.configuration(heartbeat: .zero).heartbeatOnTheWire == 0)
        #expect(Self.configuration(heartbeat: .seconds(65535)).heartbeatOnTheWire == 65535)
        #expect(ConnectionConfiguration().heartbeatOnTheWire == 60)
    }

    @Test func aHeartbeatAMQPCannotCarryIsRefused() {
        #expect(Self.configuration(heartbeat: .seconds(65536)).heartbeatOnTheWire == nil)
        #expect(Self.configuration(heartbeat: .seconds(-1)).heartbeatOnTheWire == nil)
        #expect(Self.configuration(heartbeat: .seconds(Int64.max)).heartbeatOnTheWire == nil)
    }

    /// Refused before any socket is opened: port 1 has no broker, so reaching it would be a connect error instead.
    @Test func openingWithAnOutOfRangeHeartbeatIsAnInvalidArgument() async throws {
        var configuration = try ConnectionConfiguration(url: "amqp://guest:guest@127.0.0.1:1/%2f")
        configuration.heartbeat = .seconds(70000)
        let error = await #expect(throws: AMQPError.self) { try await Connection.open(configuration) }
        #expect(error?.kind == .invalidArgument)
        #expect("\(error.map { "\($0)" } ?? "")".contains("65535"))
    }
}

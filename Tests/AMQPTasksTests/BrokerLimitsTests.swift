import AMQPTasks
import Testing

/// `[broker]` numbers that become URL options: out of range is a configuration error with file, line and range,
/// not a trap when the worker or client builds its URL.
@Suite struct BrokerLimitsTests {
    @Test(arguments: [
        ("connection_timeout = inf", "broker.connection_timeout"), ("connection_timeout = 1e300", "broker.connection_timeout"),
        ("connection_timeout = -inf", "broker.connection_timeout"), ("connection_timeout = nan", "broker.connection_timeout"),
        ("connection_timeout = 100000", "broker.connection_timeout"), ("heartbeat = 100000", "broker.heartbeat"),
        ("heartbeat = -1", "broker.heartbeat"),
    ])
    func outOfRangeBrokerNumbersAreConfigErrors(_ line: String, _ key: String) {
        let errors = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse("[broker]\n\(line)\n", file: "t.toml", environment: [:])
        }
        let text = errors?.description ?? ""
        #expect(text.contains("t.toml:2: \(key): expected ") && text.contains(" to "), "\(text)")
    }

    @Test func brokerNumbersAtTheirLimitsMakeAValidConnection() throws {
        let c = try TasksConfiguration.parse(
            "[broker]\nheartbeat = 65535\nconnection_timeout = 86400\n", file: "t.toml", environment: [:])
        #expect(c.broker.connections.map(\.heartbeat) == [.seconds(65535)])
        #expect(c.broker.connections.map(\.connectionTimeout) == [.seconds(86400)])
    }
}

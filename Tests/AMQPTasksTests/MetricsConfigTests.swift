import AMQPTasks
import Testing

/// `[worker] metrics_port` and `metrics_host`: read into `WorkerConfiguration.metricsEndpoint`, bad values named by
/// file, line and key.
@Suite struct MetricsConfigTests {
    func parse(_ text: String) throws -> TasksConfiguration {
        try TasksConfiguration.parse(text, file: "metrics.toml", environment: [:])
    }

    func errors(_ text: String) -> [String] {
        do {
            _ = try parse(text)
            return []
        } catch let errors as ConfigErrors {
            return errors.errors.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    @Test func aPortAloneListensOnLoopback() throws {
        #expect(try parse("[worker]\nmetrics_port = 9464\n").worker.metricsEndpoint
            == MetricsEndpoint(host: "127.0.0.1", port: 9464))
        #expect(try parse("[worker]\nmetrics_port = 9464\nmetrics_host = \"0.0.0.0\"\n").worker.metricsEndpoint
            == MetricsEndpoint(host: "0.0.0.0", port: 9464))
        #expect(try parse("[worker]\nconcurrency = 2\n").worker.metricsEndpoint == nil)
    }

    @Test func badValuesAreNamedByFileLineAndKey() {
        let outOfRange = errors("[worker]\nmetrics_port = 70000\n")
        #expect(outOfRange.count == 1)
        #expect(outOfRange.first?.contains("metrics.toml:2") == true, "\(outOfRange)")
        #expect(outOfRange.first?.contains("metrics_port") == true && outOfRange.first?.contains("70000") == true)
        let hostAlone = errors("[worker]\nmetrics_host = \"0.0.0.0\"\n")
        #expect(hostAlone.count == 1)
        #expect(hostAlone.first?.contains("metrics_host needs metrics_port") == true, "\(hostAlone)")
        #expect(errors("[worker]\nmetrics_port = \"9464\"\n").count == 1)
    }
}

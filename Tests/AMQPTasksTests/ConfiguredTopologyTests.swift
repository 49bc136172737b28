import AMQP
import AMQPTasks
import Foundation
import Testing

/// A configuration file applied to the real broker: declare, routing, and a worker started with only --config.
@Suite struct ConfiguredTopologyTests {
    /// A configuration whose names are unique to one test.
    struct Fixture {
        let prefix = uniqueQueue("cfg")
        var exchange: String { "\(prefix).x" }
        var reports: String { "\(prefix).reports" }
        var mail: String { "\(prefix).mail" }
        var text: String {
            """
            [broker]
            url = "\(Broker.url)"
            heartbeat = 10

            [[exchanges]]
            name = "\(exchange)"
            type = "topic"

            [[queues]]
            name = "\(reports)"
            type = "quorum"
            delivery_limit = 3
            bindings = [{ exchange = "\(exchange)", routing_key = "reports.#" }]

            [[queues]]
            name = "\(mail)"

            [routes]
            "reports.**" = { exchange = "\(exchange)", routing_key = "reports.build" }
            "mail.*" = { queue = "\(mail)" }

            [worker]
            queues = ["\(reports)", "\(mail)"]
            concurrency = 1

            [tasks."reports.count"]
            command = ["/bin/sh", "-c", "wc -c"]
            """
        }

        func configuration() throws -> TasksConfiguration {
            try TasksConfiguration.parse(text, file: "\(prefix).toml", environment: [:])
        }

        func write() throws -> String {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix).toml").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func cleanUp() async throws {
            let connection = try await Connection.open(url: Broker.url)
            let channel = try await connection.openChannel()
            for queue in [reports, mail, "\(reports).dead", "\(mail).dead"] { try await channel.deleteQueue(queue) }
            for exchange in [exchange, "\(reports).dead", "\(mail).dead"] { try await channel.deleteExchange(exchange) }
            await connection.close()
        }
    }

    @Test func declaringTwiceChangesNothing() async throws {
        let fixture = Fixture()
        let configuration = try fixture.configuration()
        let connection = try await Connection.open(url: Broker.url)
        let first = try await Topology.declare(configuration, on: connection)
        let second = try await Topology.declare(configuration, on: connection)
        #expect(first == second)
        #expect(first.map(\.description).contains("queue \(fixture.reports) (quorum)"))
        await connection.close()
        try await fixture.cleanUp()
    }

    @Test func aMismatchWithTheBrokerIsReportedReadably() async throws {
        let fixture = Fixture()
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.declareQueue(fixture.reports, durable: true)  // classic, where the file says quorum
        do {
            try await Topology.declare(fixture.configuration(), on: connection)
            Issue.record("a mismatch must be reported")
        } catch let problem as Topology.Problem {
            #expect(
                problem.description
                    == "queue \(fixture.reports) exists with x-dead-letter-exchange = none, \(fixture.prefix).toml says '\(fixture.reports).dead': delete the queue (a queue loses its messages) or change \(fixture.prefix).toml to match"
            )
        }
        await connection.close()
        try await fixture.cleanUp()
    }

    @Test func aTaskSentByNameLandsInTheQueueItsRouteNames() async throws {
        let fixture = Fixture()
        let configuration = try fixture.configuration()
        let connection = try await Connection.open(url: Broker.url)
        try await Topology.declare(configuration, on: connection)
        let client = try await TaskClient.connect(configuration: configuration)
        try await client.send("reports.monthly.pdf", options: { var o = SendOptions(); o.ignoreResult = true; return o }())
        try await client.send("mail.send")
        let channel = try await connection.openChannel()
        #expect(try await channel.inspectQueue(fixture.reports).messageCount == 1, "via the topic exchange")
        #expect(try await channel.inspectQueue(fixture.mail).messageCount == 1, "straight to the queue")
        await client.close()
        await connection.close()
        try await fixture.cleanUp()
    }

    @Test func aWorkerStartedWithOnlyConfigConsumesItsQueuesAndRunsExecHandlers() async throws {
        let fixture = Fixture()
        let path = try fixture.write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let worker = try WorkerProcess(["--config", path], includeURL: false)
        try await worker.waitFor("consuming \(fixture.reports), \(fixture.mail)")
        let client = try await TaskClient.connect(configuration: fixture.configuration())
        let id = try await client.send("reports.count", args: ["abc"])
        let value = try await client.value(for: id, timeout: .seconds(20))
        #expect(value.intValue ?? 0 > 0, "wc -c counted the JSON the exec handler got on stdin")
        worker.signal(SIGTERM)
        #expect(try await worker.exitStatus() == 0)
        await client.close()
        try await fixture.cleanUp()
    }
}

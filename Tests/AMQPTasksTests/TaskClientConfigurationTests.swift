import AMQP
import AMQPTasks
import Foundation
import Testing

/// `TaskClient.connect(configuration:)` opens its connection with the file's `[broker]` settings even after the
/// addresses were replaced (as `--url`/`AMQP_URL` do); the broker's management API shows what was negotiated.
@Suite struct TaskClientConfigurationTests {
    /// The heartbeat (`timeout`, seconds) of the connection named `name`, once the broker lists it.
    static func heartbeat(ofConnectionNamed name: String) async throws -> Int {
        let url = "http://127.0.0.1:\(ManagementAPIProbe.port)/api/connections"
        for _ in 0..<300 {
            let output = try ManagementAPIProbe.run(["curl", "-sf", "-u", "guest:guest", url])
            if let connections = try? JSONValue.parse(Data(output.utf8)).arrayValue,
                let connection = connections.first(where: {
                    $0["client_properties"]?["connection_name"]?.stringValue == name
                }),
                let timeout = connection["timeout"]?.intValue
            {
                return timeout
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the management API never listed a connection named \(name)")
    }

    @Test func theClientOfAFileKeepsItsHeartbeatWhenTheAddressIsReplaced() async throws {
        var configuration = try TasksConfiguration.parse(
            "[broker]\nurl = \"amqp://nobody:wrong@127.0.0.1:1/%2f\"\nheartbeat = 7\n", file: "t.toml", environment: [:])
        try configuration.broker.replaceAddresses(withURLs: Broker.url)
        let replyQueue = "amqp-tasks.reply.test.\(UUID().uuidString.prefix(8).lowercased())"
        let client = try await TaskClient.connect(configuration: configuration, replyQueue: replyQueue)
        let heartbeat = try await Self.heartbeat(ofConnectionNamed: "amqp-tasks client \(getpid()) \(replyQueue)")
        await client.close()
        #expect(heartbeat == 7)
        let cleanup = try await Connection.open(url: Broker.url)
        _ = try? await cleanup.openChannel().deleteQueue(replyQueue)
        await cleanup.close()
    }
}

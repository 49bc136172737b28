import AMQP
import AMQPTasks
import Foundation
import Testing

/// Everything the file can set, Swift can set: a configuration built with the public initialisers equals the one a
/// file with every key gives. No broker needed.
@Suite struct ConfigurationInSwiftTests {
    static let everyKey = """
        [broker]
        urls = ["amqps://u:p@node1:5671/v", "amqps://node2"]
        heartbeat = 7
        connection_timeout = 2.5
        ca_file = "/tls/ca.pem"
        cert_file = "/tls/client.pem"
        key_file = "/tls/client.key"

        [[exchanges]]
        name = "tasks"
        type = "topic"
        durable = false
        auto_delete = true
        arguments = { "alternate-exchange" = "lost" }

        [[exchanges]]
        name = "lost"
        type = "fanout"

        [[queues]]
        name = "reports"
        type = "quorum"
        dead_letter_exchange = "lost"
        delivery_limit = 5
        message_ttl = 60000
        arguments = { "x-max-length" = 1000 }
        bindings = [{ exchange = "tasks", routing_key = "reports.#" }]

        [[queues]]
        name = "urgent"
        durable = false
        max_priority = 9

        [routes]
        "reports.**" = { exchange = "tasks", routing_key = "reports.build" }
        "mail.*" = { queue = "urgent" }

        [worker]
        queues = ["reports", "urgent"]
        concurrency = 3
        prefetch = 2
        grace_period = 12.5
        hostname = "w1@host"
        send_started = true
        max_retries = 4
        result_persistent = false
        max_message_size = 1048576
        max_result_size = 2048
        record_attempts = 5
        remote_control = "all"

        [tasks."reports.wordcount"]
        command = ["/usr/bin/wc", "-w"]
        max_retries = 2
        retry_backoff = 3
        time_limit = 60
        soft_time_limit = 50.5
        ignore_result = true
        queue = "reports"
        env = { LANG = "C" }
        inherit_env = ["HOME", "APP_*"]
        stdout_limit = 4096
        stderr_limit = 1024
        kill_timeout = 0.25

        [tasks."mail.send"]
        retry_backoff = false
        """

    static func inSwift() throws -> TasksConfiguration {
        var configuration = TasksConfiguration(
            broker: try BrokerSettings(
                url: "amqps://u:p@node1:5671/v,amqps://node2", heartbeat: .seconds(7),
                connectionTimeout: .milliseconds(2500), caFile: "/tls/ca.pem", certFile: "/tls/client.pem",
                keyFile: "/tls/client.key"),
            exchanges: [
                ExchangeDefinition(
                    name: "tasks", type: .topic, durable: false, autoDelete: true,
                    arguments: ["alternate-exchange": "lost"]),
                ExchangeDefinition(name: "lost", type: .fanout),
            ],
            queues: [
                QueueDefinition(
                    name: "reports", kind: .quorum, deadLetterExchange: "lost", deliveryLimit: 5, messageTTL: 60000,
                    arguments: ["x-max-length": .int32(1000)],
                    bindings: [.init(exchange: "tasks", routingKey: "reports.#")]),
                QueueDefinition(name: "urgent", durable: false, maxPriority: 9),
            ],
            routes: [
                Route(pattern: "reports.**", target: .exchange("tasks", routingKey: "reports.build")),
                Route(pattern: "mail.*", target: .queue("urgent")),
            ],
            worker: WorkerConfiguration(
                queues: ["reports", "urgent"], concurrency: 3, prefetch: 2, hostname: "w1@host",
                retryPolicy: RetryPolicy(maxRetries: 4), persistentResults: false, maxMessageSize: 1 << 20,
                maxResultSize: 2048, recordAttempts: 5, sendStarted: true, gracePeriod: .milliseconds(12500),
                remoteControl: .all),
            tasks: [
                "reports.wordcount": TaskSettings(
                    command: ["/usr/bin/wc", "-w"], maxRetries: 2, retryBackoff: .seconds(3), timeLimit: .seconds(60),
                    softTimeLimit: .milliseconds(50500), ignoreResult: true, queue: "reports", env: ["LANG": "C"],
                    inheritEnv: ["HOME", "APP_*"], stdoutLimit: 4096, stderrLimit: 1024, killTimeout: .milliseconds(250)),
                "mail.send": TaskSettings(retryBackoff: .zero),
            ])
        configuration.file = "every-key.toml"
        return configuration
    }

    @Test func aConfigurationBuiltInSwiftEqualsTheFile() throws {
        let loaded = try TasksConfiguration.parse(Self.everyKey, file: "every-key.toml", environment: [:])
        let built = try Self.inSwift()
        // Section by section first, so a difference says where it is.
        #expect(built.broker == loaded.broker)
        #expect(built.exchanges == loaded.exchanges)
        #expect(built.queues == loaded.queues)
        #expect(built.routes == loaded.routes)
        #expect(built.worker == loaded.worker)
        #expect(built.tasks == loaded.tasks)
        #expect(built == loaded)
        #expect(WorkerConfiguration(configuration: built) == WorkerConfiguration(configuration: loaded))
    }

    @Test func theFilesTimesAreDurations() throws {
        let c = try TasksConfiguration.parse(Self.everyKey, file: "every-key.toml", environment: [:])
        #expect(c.worker.gracePeriod == .milliseconds(12500))
        #expect(c.tasks["reports.wordcount"]?.killTimeout == .milliseconds(250))
        #expect(c.tasks["mail.send"]?.retryBackoff == .zero)
        let worker = WorkerConfiguration(configuration: c)
        #expect(worker.broker.connections.map(\.connectionTimeout) == [.milliseconds(2500), .milliseconds(2500)])
        #expect(worker.retryPolicy.maxRetries == 4)
    }

    @Test func withoutWorkerQueuesTheDefaultIsNotCheckedAgainstTheFilesQueues() throws {
        // [worker] without queues consumes celery, which the file need not declare.
        let c = try TasksConfiguration.parse(
            "[[queues]]\nname = \"reports\"\n\n[worker]\nconcurrency = 2\n", file: "t.toml", environment: [:])
        #expect(c.worker.queues == ["celery"])
        #expect(c.worker.concurrency == 2)
    }
}

import AMQP
import AMQPTasks
import Foundation
import Testing

/// Parsing and validation of amqp-tasks.toml; no broker needed.
@Suite struct ConfigurationTests {
    static let example = Broker.repoRoot.appendingPathComponent("Deploy/examples/amqp-tasks.toml").path

    /// The messages `parse` reports for `text`, one string each.
    func errors(_ text: String) -> [String] {
        do {
            _ = try TasksConfiguration.parse(text, file: "bad.toml", environment: [:])
            return []
        } catch let errors as ConfigErrors {
            return errors.errors.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    @Test func theExampleFileReadsIntoEverySection() throws {
        let c = try TasksConfiguration.load(path: Self.example, environment: [:])
        #expect(c.broker.url == "amqp://guest:guest@127.0.0.1:5672/%2f")
        #expect(c.broker.heartbeat == .seconds(30))
        #expect(c.broker.connectionTimeout == .seconds(10))
        #expect(c.broker.connections.map(\.heartbeat) == [.seconds(30)])
        #expect(c.exchanges == [ExchangeDefinition(name: "tasks", type: .topic)])
        #expect(c.queues.map(\.name) == ["celery", "reports"])
        let reports = try #require(c.queue(named: "reports"))
        #expect(reports.kind == .quorum)
        #expect(reports.declareArguments["x-queue-type"] == "quorum")
        #expect(reports.declareArguments["x-delivery-limit"] == .int32(5))
        #expect(reports.bindings == [.init(exchange: "tasks", routingKey: "reports.#")])
        #expect(c.queue(named: "celery")?.declareArguments.isEmpty == true, "celery is declared as Celery does")
        #expect(c.routes.map(\.pattern) == ["reports.**", "mail.*"], "file order, not TOMLKit's sorted order")
        #expect(c.worker.queues == ["celery", "reports"])
        #expect(c.worker.concurrency == 2)
        #expect(c.worker.prefetch == 1)
        #expect(c.worker.sendStarted)
        #expect(c.worker.persistentResults)
        #expect(WorkerConfiguration(configuration: c).persistentResults)
        #expect(c.tasks["reports.wordcount"]?.command == ["/usr/bin/wc", "-w"])
        #expect(c.tasks["reports.wordcount"]?.maxRetries == 2)
        #expect(c.tasks["reports.wordcount"]?.timeLimit == .seconds(60))
        #expect(c.schedules["demo.heartbeat"]?.timing == .every(seconds: 10), "the schedule Deploy/quickstart shows")
        #expect(c.schedules["demo.heartbeat"]?.task == "demo.add")
    }

    /// A name or key longer than AMQP's short string (255 bytes; 250 for a queue, whose `.dead` queue is declared
    /// too) is a configuration error with its line and key, not a connection that rabbitmq-c drops while writing
    /// `queue.declare`, at every reconnect.
    @Test func namesLongerThanAnAMQPShortStringAreRefusedWithTheirLineAndKey() {
        let long = String(repeating: "q", count: 251)
        let messages = errors(
            """
            [[exchanges]]
            name = "\(long)xxxxx"

            [[queues]]
            name = "\(long)"
            bindings = [{ exchange = "amq.topic", routing_key = "\(long)xxxxx" }]

            [routes]
            "a.*" = { exchange = "amq.topic", routing_key = "\(long)xxxxx" }

            [worker]
            queues = ["\(long)"]
            """)
        #expect(messages.count == 5, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("bad.toml:2: exchanges[0].name: must be at most 255 bytes, got 256") }, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("bad.toml:5: queues[0].name: must be at most 250 bytes") && $0.hasSuffix("got 251") }, "\(messages)")
        #expect(messages.contains { $0.contains("routing_key: must be at most 255 bytes, got 256") }, "\(messages)")
        #expect(messages.contains { $0.contains("worker.queues: must be at most 250 bytes") }, "\(messages)")
        #expect(errors("[[queues]]\nname = \"\(String(repeating: "q", count: 250))\"\n").isEmpty)
    }

    @Test func amqpURLInTheEnvironmentOverridesTheFile() throws {
        let c = try TasksConfiguration.load(path: Self.example, environment: ["AMQP_URL": "amqp://u:p@elsewhere/%2f"])
        #expect(c.broker.url == "amqp://u:p@elsewhere/%2f")
        #expect(c.broker.maskedURL == "amqp://u:***@elsewhere/%2f")
    }

    @Test func routesMatchByGlobFirstMatchWinsThenTaskQueueThenDefault() throws {
        let c = try TasksConfiguration.parse(
            """
            [[exchanges]]
            name = "mail"
            [[queues]]
            name = "urgent"
            [[queues]]
            name = "bulk"
            [routes]
            "mail.urgent.*" = { queue = "urgent" }
            "mail.**" = { exchange = "mail", routing_key = "outgoing" }
            "bulk.*" = { queue = "bulk" }
            [tasks."bulk.special"]
            queue = "urgent"
            """, file: "routes.toml", environment: [:])
        let router = TaskRouter(configuration: c)
        #expect(router.target(for: "mail.urgent.send") == .queue("urgent"), "first match wins")
        #expect(router.target(for: "mail.digest.weekly.send") == .exchange("mail", routingKey: "outgoing"))
        #expect(router.target(for: "bulk.import") == .queue("bulk"))
        #expect(router.target(for: "bulk.import.more") == .queue("celery"), "* stays within one part")
        #expect(router.target(for: "bulk.special") == .queue("urgent"), "a task's own queue comes first")
        #expect(router.target(for: "other") == .queue("celery"))
    }

    @Test func syntaxErrorsNameTheLine() {
        #expect(errors("[broker]\nurl = \"amqp://x\n") .first?.hasPrefix("bad.toml:2: TOML syntax:") == true)
    }

    /// toml++ stops the process (debug) or has undefined behaviour (release) on a header without a key: found by
    /// the fuzzer, rejected before it reaches the parser.
    @Test func aTableHeaderWithoutAKeyIsASyntaxErrorNotACrash() {
        #expect(errors("[broker]\nurl = \"amqp://x\"\n\n[[,queues]]\n")
            == ["bad.toml:4: TOML syntax: a table header must start with a key name, found ',' (column 3)"])
        #expect(errors("[ =x]\n").first?.hasPrefix("bad.toml:1: TOML syntax: a table header must start") == true)
        #expect(errors("\u{FEFF}[\u{FFFD}]\n").first?.hasPrefix("bad.toml:1: TOML syntax: a table header must start") == true)
        #expect(errors("[worker]\nqueues = [\"celery\", }\n")
            == ["bad.toml:2: TOML syntax: expected a value or ']' in the array, found '}' (column 21)"])
        #expect(!errors("[tasks]\nx = { a = [1, 2], b = { c = [3] } }\n").contains { $0.contains("TOML syntax") })
        // A "[" that opens a value, or sits in a multi-line string, is no header.
        #expect(errors("[worker]\nqueues = [\n[,\n") .first?.contains("a table header") != true)
        #expect(errors("[worker]\nhostname = \"\"\"\n[[,x\n\"\"\"\n").first?.contains("a table header") != true)
        #expect(!errors("[worker]\nqueues = [\n  \"a\",\n  \"b\",\n]\n[broker]\nurl = \"amqp://h\"\n").contains { $0.contains("TOML syntax") })
    }

    @Test func resultPersistentCanBeTurnedOffAndMustBeABoolean() throws {
        let off = try TasksConfiguration.parse("[worker]\nresult_persistent = false\n", file: "w.toml", environment: [:])
        #expect(!WorkerConfiguration(configuration: off).persistentResults)
        #expect(errors("[worker]\nresult_persistent = \"no\"\n").first?.hasPrefix("bad.toml:2: worker.result_persistent:") == true)
    }

    @Test func eachValidationErrorNamesFileLineAndKey() {
        let cases: [(String, String)] = [
            ("[broker]\nurl = \"amqp://h/%2f\"\nheartbeat = \"often\"\n",
             "bad.toml:3: broker.heartbeat: expected an integer, got string \"often\""),
            ("[broker]\nuri = \"amqp://h\"\n",
             "bad.toml:2: broker.uri: unknown key; expected one of: ca_file, cert_file, connection_timeout, heartbeat, key_file, url, urls"),
            ("[broker]\nurl = \"http://h\"\n",
             "bad.toml:2: broker.url: http://h: the scheme must be amqp or amqps"),
            ("[worker]\nconcurrency = -2\n",
             "bad.toml:2: worker.concurrency: expected a whole number of consumers, at least 1, got -2"),
            ("[[queues]]\nname = \"a\"\n\n[[queues]]\nname = \"b\"\ntype = \"lazy\"\n",
             "bad.toml:6: queues[1].type: expected \"classic\" or \"quorum\", got \"lazy\""),
            ("[[queues]]\nname = \"q\"\nbindings = [{ exchange = \"missing\", routing_key = \"k\" }]\n",
             "bad.toml:3: queues[0].bindings[0].exchange: queue q is bound to exchange \"missing\", which is not declared in [[exchanges]]"),
            ("[routes]\n\"mail.*\" = { exchange = \"nowhere\" }\n",
             "bad.toml:2: routes.\"mail.*\".exchange: route to exchange \"nowhere\", which is not declared in [[exchanges]]"),
            ("[routes]\n\"mail.*\" = { queue = \"nowhere\" }\n",
             "bad.toml:2: routes.\"mail.*\".queue: route to queue \"nowhere\", which is not declared in [[queues]]"),
            ("[[queues]]\nname = \"q\"\ndelivery_limit = 3\n",
             "bad.toml:3: queues[0].delivery_limit: delivery_limit needs type = \"quorum\""),
            ("[[exchanges]]\nname = \"e\"\ntype = \"round-robin\"\n",
             "bad.toml:3: exchanges[0].type: expected direct, topic, fanout, headers or a plugin's x- type, got \"round-robin\""),
            ("[worker]\nqueues = [\"ghost\"]\n",
             "bad.toml:2: worker.queues[0]: queue \"ghost\" is not declared in [[queues]]"),
            ("[tasks.\"images.resize\"]\ncommand = []\n",
             "bad.toml:2: tasks.\"images.resize\".command: expected the program and its arguments, e.g. [\"/usr/bin/convert\", \"-resize\"]"),
            ("[tasks.\"images.resize\"]\ntime_limit = 0\n",
             "bad.toml:2: tasks.\"images.resize\".time_limit: expected a number > 0, got 0.0"),
            ("[[queues]]\ndurable = true\n",
             "bad.toml:1: queues[0]: missing name"),
            ("[[queues]]\nname = \"q\"\n[[queues]]\nname = \"q\"\n",
             "bad.toml:4: queues[1].name: queue \"q\" is declared twice"),
            ("[cluster]\nnodes = 3\n",
             "bad.toml:1: cluster: unknown key; expected one of: broker, exchanges, queues, routes, schedules, tasks, worker"),
        ]
        for (text, expected) in cases {
            #expect(errors(text) == [expected], "for:\n\(text)")
        }
    }

    @Test func allErrorsOfAFileAreReportedTogether() {
        let found = errors("[worker]\nconcurrency = 0\nprefetch = 0\n")
        #expect(found.count == 2)
    }

    /// A file saved with CRLF line ends (Windows editors) had every error on line 1: "\r\n" is one Character, which
    /// splitting on "\n" never met; after a byte order mark, the first header was not seen and the errors under it
    /// had no line at all.
    @Test func errorsNameTheirLineInCRLFFilesAndAfterAByteOrderMark() {
        let where_ = { (errors: [String]) in errors.map { $0.components(separatedBy: ": ").prefix(2).joined(separator: ": ") }.sorted() }
        #expect(where_(errors("[worker]\r\nconcurrency = 0\r\nprefetch = 0\r\n")) == ["bad.toml:2: worker.concurrency", "bad.toml:3: worker.prefetch"])
        #expect(where_(errors("\u{FEFF}[worker]\nconcurrency = 0\nprefetch = 0\n")) == ["bad.toml:2: worker.concurrency", "bad.toml:3: worker.prefetch"])
    }

    /// TOML files are UTF-8: a byte that is not (a Latin-1 "é" in a password) is refused with its line, where
    /// decoding it turned it into U+FFFD and the worker logged in with a password the file does not hold.
    @Test func aFileThatIsNotUTF8IsRefusedWithItsLine() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("amqp-tasks-\(UUID()).toml")
        let bytes = Array("[broker]\n\nurl = \"amqp://u:caf".utf8) + [0xE9] + Array("@h/\"\n".utf8)
        try Data(bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        do {
            let config = try TasksConfiguration.load(path: file.path, environment: [:])
            Issue.record("accepted, as \(config.broker.maskedURL)")
        } catch let errors as ConfigErrors {
            #expect(errors.errors.map(\.description) == [
                "\(file.path):3: TOML syntax: the file is not UTF-8 text (a byte on this line is not UTF-8); save it as UTF-8"
            ])
        }
    }

    @Test func configCheckPrintsTheErrorAndExitsOne() throws {
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("amqp-tasks-\(UUID()).toml")
        try "[worker]\nconcurrency = -1\n".write(to: bad, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: bad) }
        let (status, _, stderr) = try runCLI(["config", "check", "--config", bad.path])
        #expect(status == 1)
        #expect(stderr.contains("\(bad.path):2: worker.concurrency: expected a whole number of consumers, at least 1, got -1"))
        let (okStatus, stdout, _) = try runCLI(["config", "check", "--config", Self.example])
        #expect(okStatus == 0)
        // The broker is the file's, or $AMQP_URL's when the environment sets it (as Deploy/test does, on its port).
        #expect(stdout.contains("broker: amqp://guest:***@127.0.0.1:"), "the password is masked")
        #expect(!stdout.contains("guest:guest"))
    }
}

/// Runs the `amqp-task` binary that `swift build` made; returns status, stdout and stderr.
func runCLI(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String, String) {
    let binary = Broker.repoRoot.appendingPathComponent(".build/debug/amqp-task")
    guard FileManager.default.isExecutableFile(atPath: binary.path) else {
        throw TestFailure("amqp-task is not built at \(binary.path); run swift build first")
    }
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "AMQP_TASKS_CONFIG")
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

import AMQP
import AMQPTasks
import Foundation
import Testing

/// Exec handlers against the real broker: cancellation (shutdown, `revoke --terminate`), hard time limits,
/// process groups, output limits and the environment a command gets.
@Suite struct ExecHandlerTests {
    /// A bad `--exec` option is a configuration error naming the option, not a task failure (`TaskFailure`).
    @Test(arguments: ["no-equals-sign", "=python3 x.py", "name=", "name=   "])
    func aBadExecSpecIsAConfigurationError(spec: String) {
        let error = #expect(throws: ConfigError.self) { try ExecHandler.parse(spec) }
        #expect(error?.file == "--exec")
        #expect(error?.description.contains("expected NAME=COMMAND") == true)
        #expect(error?.description.contains(spec) == true)
    }

    @Test func aGoodExecSpecSplitsTheCommandOnSpaces() throws {
        let (name, handler) = try ExecHandler.parse("images.resize=python3  resize.py --fast")
        #expect(name == "images.resize")
        #expect(handler.command == ["python3", "resize.py", "--fast"])
    }

    /// Item 9: past the grace period the exec child is stopped and the task requeued, never acked as FAILURE.
    @Test func sigtermPastTheGracePeriodStopsTheChildAndRequeuesTheTask() async throws {
        let queue = uniqueQueue("exec-grace")
        let worker = try WorkerProcess(["--exec", "slow=/bin/sleep 60", "--queue", queue, "--grace", "2"])
        try await worker.waitFor("consuming \(queue)")
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("slow", options: SendOptions(queue: queue))
        try await worker.waitFor("task_id=\(id) [AMQPTasks] received")
        worker.signal(SIGTERM)
        // The child sleeps 60 s: exiting within 30 s shows the worker stopped it rather than waiting for it.
        #expect(try await worker.exitStatus(within: 30) == 0, "worker log:\n\(worker.output)")
        #expect(try await readyMessages(in: queue) == 1, "the task is back in its queue; worker log:\n\(worker.output)")

        // The next worker runs it; the caller's first and only final state is its SUCCESS: no FAILURE was sent.
        let second = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("slow", ExecHandler(command: ["/bin/echo", "second run"]))
        }
        let states = try await client.states(for: id, timeout: .seconds(30))
        #expect(states.map(\.status) == [.success])
        #expect(states.last?.result == "second run")
        try await second.stop()
        await client.close()
    }

    /// Item 9: `revoke --terminate` of a running exec task reports REVOKED, not the child's death as a FAILURE.
    @Test func revokeTerminateOfAnExecTaskReportsRevoked() async throws {
        let queue = uniqueQueue("exec-revoke")
        let started = TemporaryFile()
        // revoke --terminate is a destructive remote-control command: allowed with remote_control = all.
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register(
                    "exec.slow", ExecHandler(command: ["/bin/sh", "-c", "echo $$ > \(started.path); sleep 60"]))
            },
            configure: { $0.remoteControl = .all })
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("exec.slow", options: SendOptions(queue: queue))
        let shell = try await started.waitForPID()
        try await broadcastRevoke(id, terminate: true, to: worker.worker.configuration.hostname)
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.status == .revoked, "got \(result.status): \(result.result)")
        #expect(try await processEnds(shell))
        try await worker.stop()
        await client.close()
    }

    /// Item 10: a stop gives the whole group its time between SIGTERM and SIGKILL, even when the leader dies at once.
    @Test func groupMembersGetTheKillTimeoutToCleanUpAfterTheLeaderDies() async throws {
        let queue = uniqueQueue("exec-cleanup")
        let ready = TemporaryFile(), cleaned = TemporaryFile()
        let member = "trap 'sleep 1; echo cleaned > \(cleaned.path); exit 0' TERM; echo $$ > \(ready.path); sleep 300 & wait"
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                // The leader has no trap: SIGTERM ends it at once; its background member cleans up for a second.
                try registry.register("exec.tidy", ExecHandler(command: ["/bin/sh", "-c", "/bin/sh -c \"\(member)\" & wait"]))
            },
            configure: { $0.remoteControl = .all })
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("exec.tidy", options: SendOptions(queue: queue))
        _ = try await ready.waitForPID()
        try await broadcastRevoke(id, terminate: true, to: worker.worker.configuration.hostname)
        #expect(try await client.result(for: id, timeout: .seconds(30)).status == .revoked)
        #expect(try await cleaned.waitForText() == "cleaned\n")
        try await worker.stop()
        await client.close()
    }

    /// Item 10: a command that ignores SIGTERM (and its child, which inherits that) is killed at the hard time limit.
    @Test func aChildIgnoringSIGTERMIsKilledAtTheHardTimeLimit() async throws {
        let queue = uniqueQueue("exec-limit")
        let pids = TemporaryFile()
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register(
                "exec.stubborn",
                ExecHandler(command: [
                    "/bin/sh", "-c", "trap '' TERM; sleep 300 & echo $$ $! > \(pids.path); wait",
                ]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        var options = SendOptions(queue: queue)
        options.timeLimit = .init(hard: .seconds(1))
        let id = try await client.send("exec.stubborn", options: options)
        let result = try await client.result(for: id, timeout: .seconds(60))
        #expect(result.status == .failure)
        #expect(result.failure?.type == "TimeLimitExceeded")
        for pid in try await pids.waitForPIDs(2) {
            #expect(try await processEnds(pid), "process \(pid) of the stubborn command's group was killed")
        }
        try await worker.stop()
        await client.close()
    }

    /// Item 10: the result is read when the command exits, not when every holder of its stdout has closed it.
    @Test func aBackgroundGrandchildHoldingStdoutDoesNotHoldTheResult() async throws {
        let queue = uniqueQueue("exec-grandchild")
        let leftover = TemporaryFile()
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register(
                "exec.background",
                ExecHandler(command: ["/bin/sh", "-c", "sleep 300 & echo $! > \(leftover.path); echo done"]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("exec.background", options: SendOptions(queue: queue))
        // The sleep holds stdout for 300 s; the answer within 30 s is the shell's, taken when the shell exited.
        #expect(try await client.value(for: id, timeout: .seconds(30)) == "done")
        #expect(try await processEnds(try await leftover.waitForPID()), "what the command left in its group is killed")
        try await worker.stop()
        await client.close()
    }

    /// Item 10: stdout and stderr are read concurrently, so output larger than a pipe's buffer blocks nothing.
    @Test func aChattyChildDoesNotDeadlockOnFullPipes() async throws {
        let queue = uniqueQueue("exec-chatty")
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register(
                "exec.chatty",
                ExecHandler(command: ["/bin/sh", "-c", "head -c 300000 /dev/zero >&2; head -c 300000 /dev/zero | tr '\\0' a; echo"]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("exec.chatty", options: SendOptions(queue: queue))
        let value = try await client.value(for: id, timeout: .seconds(30))
        #expect(value.stringValue?.count == 300_000)
        try await worker.stop()
        await client.close()
    }

    /// Item 8: stdout past the limit (1 MiB by default) fails the task and stops the command.
    @Test func stdoutPastTheLimitFailsTheTask() async throws {
        let queue = uniqueQueue("exec-output")
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("exec.big", ExecHandler(command: ["/usr/bin/head", "-c", "2000000", "/dev/zero"]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("exec.big", options: SendOptions(queue: queue))
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.status == .failure)
        #expect(result.failure?.type == "ExecOutputTooLarge")
        try await worker.stop()
        await client.close()
    }

    /// Item 13: the command does not get the worker's environment, only a minimal one.
    @Test func theCommandDoesNotInheritTheWorkersEnvironment() async throws {
        let (name, _) = try variableOutsideTheMinimalEnvironment()
        let queue = uniqueQueue("exec-env")
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("exec.env", ExecHandler(command: ["/usr/bin/env"]))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("exec.env", options: SendOptions(queue: queue))
        let names = environmentNames(try await client.value(for: id, timeout: .seconds(30)))
        #expect(!names.contains(name), "the worker's \(name) reached the command")
        #expect(names.contains("PATH"))
        try await worker.stop()
        await client.close()
    }

    /// Item 13: what the task's configuration names is passed: `inherit_env` from the worker (by name or prefix),
    /// `env` as given.
    @Test func inheritEnvAndEnvAddToTheMinimalEnvironment() async throws {
        let (name, value) = try variableOutsideTheMinimalEnvironment()
        let configuration = try TasksConfiguration.parse(
            """
            [tasks."exec.exact"]
            command = ["/usr/bin/env"]
            inherit_env = ["\(name)"]
            env = { GREETING = "hello world", PATH = "/usr/bin:/bin" }

            [tasks."exec.prefix"]
            command = ["/usr/bin/env"]
            inherit_env = ["\(name.dropLast())*"]
            """, file: "exec.toml", environment: [:])
        let queue = uniqueQueue("exec-env-config")
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            for (task, settings) in configuration.tasks {
                try registry.register(task, ExecHandler(command: settings.command!, options: ExecOptions(settings: settings)))
            }
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let exact = try await client.send("exec.exact", options: SendOptions(queue: queue))
        let lines = Set((try await client.value(for: exact, timeout: .seconds(30)).stringValue ?? "").split(separator: "\n"))
        #expect(lines.isSuperset(of: ["\(name)=\(value)", "GREETING=hello world", "PATH=/usr/bin:/bin"]))
        let prefixed = try await client.send("exec.prefix", options: SendOptions(queue: queue))
        let prefixedLines = (try await client.value(for: prefixed, timeout: .seconds(30)).stringValue ?? "").split(separator: "\n")
        #expect(prefixedLines.contains("\(name)=\(value)"[...]))
        try await worker.stop()
        await client.close()
    }

    /// Item 8: a command that writes without end is stopped at the limit; memory stays bounded.
    @Test func endlessStdoutIsStoppedAtTheLimit() async throws {
        let queue = uniqueQueue("exec-endless")
        var options = ExecOptions()
        options.stdoutLimit = 100_000
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register("exec.yes", ExecHandler(command: ["/usr/bin/yes"], options: options))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("exec.yes", options: SendOptions(queue: queue))
        let result = try await client.result(for: id, timeout: .seconds(30))
        #expect(result.failure?.type == "ExecOutputTooLarge")
        #expect(result.failure?.message.contains("more than 100000 bytes") == true)
        try await worker.stop()
        await client.close()
    }

    /// Item 8: stderr is kept as its tail: a failure reports the last lines, however much came before.
    @Test func aFailureReportsTheTailOfALongStderr() async throws {
        let queue = uniqueQueue("exec-stderr")
        var options = ExecOptions()
        options.stderrLimit = 1000
        let worker = try await RunningWorker.start(queues: [queue]) { registry in
            try registry.register(
                "exec.noisy",
                ExecHandler(
                    command: ["/bin/sh", "-c", "head -c 500000 /dev/zero | tr '\\0' x >&2; echo >&2; echo the real cause >&2; exit 2"],
                    options: options))
        }
        let client = try await TaskClient.connect(url: Broker.url)
        let id = try await client.send("exec.noisy", options: SendOptions(queue: queue))
        let failure = try #require(try await client.result(for: id, timeout: .seconds(30)).failure)
        #expect(failure.type == "ProcessError")
        #expect(failure.message.hasSuffix("the real cause"))
        #expect(failure.message.utf8.count <= 1000)
        try await worker.stop()
        await client.close()
    }
}

/// The exec keys of `[tasks."NAME"]`; no broker needed.
@Suite struct ExecConfigurationTests {
    @Test func execKeysAreRead() throws {
        let configuration = try TasksConfiguration.parse(
            """
            [tasks."images.resize"]
            command = ["/usr/bin/convert"]
            env = { MAGICK_TMPDIR = "/var/tmp" }
            inherit_env = ["AWS_*", "AMQP_URL"]
            stdout_limit = 4096
            stderr_limit = 0
            kill_timeout = 0.5
            """, file: "exec.toml", environment: [:])
        let options = ExecOptions(settings: try #require(configuration.tasks["images.resize"]))
        #expect(options.environment == ["MAGICK_TMPDIR": "/var/tmp"])
        #expect(options.inheritedEnvironment == ["AWS_*", "AMQP_URL"])
        #expect(options.stdoutLimit == 4096)
        #expect(options.stderrLimit == 0)
        #expect(options.killTimeout == .milliseconds(500))
        let plain = try TasksConfiguration.parse("[tasks.t]\nmax_retries = 1\n", file: "exec.toml", environment: [:])
        #expect(ExecOptions(settings: try #require(plain.tasks["t"])) == ExecOptions(), "defaults without the keys")
    }

    @Test func badExecKeysNameFileLineAndKey() {
        let cases: [(String, String)] = [
            ("[tasks.t]\ncommand = [\"/bin/true\"]\nenv = { A = 1 }\n",
             "bad.toml:3: tasks.t.env.A: expected a string, got integer 1"),
            ("[tasks.t]\nenv = \"A=1\"\n",
             "bad.toml:2: tasks.t.env: expected a table, got string \"A=1\""),
            ("[tasks.t]\n\n[tasks.t.env]\n\"A=B\" = \"x\"\n",
             "bad.toml:4: tasks.t.env.\"A=B\": \"A=B\" is not an environment variable name (no =, NUL or *)"),
            ("[tasks.t]\ninherit_env = [\"AMQP_URL\", \"\"]\n",
             "bad.toml:2: tasks.t.inherit_env[1]: an environment variable needs a name"),
            ("[tasks.t]\ninherit_env = \"AMQP_URL\"\n",
             "bad.toml:2: tasks.t.inherit_env: expected a list of strings, got string \"AMQP_URL\""),
            ("[tasks.t]\nstdout_limit = 0\n",
             "bad.toml:2: tasks.t.stdout_limit: expected a number of bytes, at least 1, got 0"),
            ("[tasks.t]\nstderr_limit = -1\n",
             "bad.toml:2: tasks.t.stderr_limit: expected a number ≥ 0, got -1"),
            ("[tasks.t]\nkill_timeout = 0\n",
             "bad.toml:2: tasks.t.kill_timeout: expected a number > 0, got 0.0"),
        ]
        for (text, expected) in cases {
            var found: [String] = []
            do {
                _ = try TasksConfiguration.parse(text, file: "bad.toml", environment: [:])
            } catch let errors as ConfigErrors {
                found = errors.errors.map(\.description)
            } catch {
                found = ["\(error)"]
            }
            #expect(found == [expected], "for:\n\(text)")
        }
    }
}

/// A variable of this process that the minimal environment does not pass (AMQP_URL when set, as `Deploy/test` sets
/// it), with a plain name and a one-line value. Read, never set: `setenv` would race with other tests' spawns.
func variableOutsideTheMinimalEnvironment() throws -> (name: String, value: String) {
    let minimal = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"]
    let candidates = ProcessInfo.processInfo.environment.filter { name, value in
        !minimal.contains(name) && !name.hasPrefix("LC_") && name.count > 1 && !value.isEmpty && !value.contains("\n")
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") } && !name.hasPrefix("_")
    }
    if let url = candidates["AMQP_URL"] { return ("AMQP_URL", url) }
    guard let first = candidates.sorted(by: { $0.key < $1.key }).first else {
        throw TestFailure("the test process has no environment variable beyond the minimal ones to check with")
    }
    return (first.key, first.value)
}

/// The variable names in `env`'s output.
func environmentNames(_ output: JSONValue) -> Set<String> {
    Set((output.stringValue ?? "").split(separator: "\n").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) })
}

/// Ready messages of a queue, on a fresh connection.
func readyMessages(in queue: String) async throws -> UInt32 {
    let connection = try await Connection.open(url: Broker.url)
    let channel = try await connection.openChannel()
    let state = try await channel.inspectQueue(queue)
    await connection.close()
    return state.messageCount
}

/// Sends Celery's `revoke` broadcast to one worker until it answers (its remote control starts beside its consumers,
/// so the first broadcast may come before it listens; revoking twice does no harm).
func broadcastRevoke(_ id: String, terminate: Bool, to hostname: String) async throws {
    let connection = try await Connection.open(url: Broker.url)
    let channel = try await connection.openChannel()
    let oid = UUID().uuidString.lowercased()
    try await channel.declareExchange("celery.pidbox", type: .fanout, durable: false)
    try await channel.declareExchange("reply.celery.pidbox", type: .direct, durable: false)
    let replies = try await channel.declareQueue("\(oid).reply.celery.pidbox", durable: false, exclusive: true, autoDelete: true).name
    try await channel.bindQueue(replies, to: "reply.celery.pidbox", routingKey: oid)
    let request: JSONValue = [
        "method": "revoke", "arguments": ["task_id": .string(id), "terminate": .bool(terminate), "signal": "SIGTERM"],
        "destination": [.string(hostname)], "reply_to": ["exchange": "reply.celery.pidbox", "routing_key": .string(oid)],
    ]
    for _ in 0..<30 {
        try await channel.publish(
            request.jsonData(), exchange: "celery.pidbox", routingKey: "",
            properties: BasicProperties(contentType: "application/json", contentEncoding: "utf-8"))
        for _ in 0..<20 {
            if try await channel.get(queue: replies, autoAck: true) != nil {
                await connection.close()
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
    await connection.close()
    throw TestFailure("worker \(hostname) never answered the revoke of \(id)")
}

/// True once `pid` has exited (gone, or a zombie left for a parent that does not reap); false after 30 s.
func processEnds(_ pid: pid_t) async throws -> Bool {
    for _ in 0..<600 {
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        // The state follows the command name in parentheses: "123 (sleep) Z ...".
        if let close = stat.lastIndex(of: ")"), stat[close...].dropFirst(2).first == "Z" { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return false
}

/// A file in the temporary directory that a command writes process ids to; removed at deinit.
final class TemporaryFile: Sendable {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("amqp-tasks-exec-\(UUID().uuidString)").path

    /// Waits until the file holds `count` process ids (written by the command once it runs).
    func waitForPIDs(_ count: Int) async throws -> [pid_t] {
        for _ in 0..<600 {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let pids = text.split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
            if text.hasSuffix("\n"), pids.count >= count { return pids }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the command never wrote \(count) process ids to \(path)")
    }

    func waitForPID() async throws -> pid_t { try await waitForPIDs(1)[0] }

    /// Waits until the file holds a whole line, and returns its text.
    func waitForText() async throws -> String {
        for _ in 0..<600 {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.hasSuffix("\n") { return text }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("nothing was written to \(path)")
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

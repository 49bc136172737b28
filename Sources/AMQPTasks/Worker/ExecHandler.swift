import AMQP
import FoundationEssentials

/// Runs a task as a process, so services in any language can be workers.
///
/// The process gets `{"id", "task", "args", "kwargs", "retries"}` as JSON on stdin, with no shell in between
/// (`command` is an argument vector). Its stdout, parsed as JSON (or taken as a string when it is not JSON), is
/// the result. Exit 0 → SUCCESS; exit 75 (EX_TEMPFAIL) → retry; another exit code → FAILURE with the tail of
/// stderr; killed by a signal it was not sent by the worker → FAILURE `WorkerLostError`; stdout over
/// `options.stdoutLimit` → FAILURE `ExecOutputTooLarge`.
///
/// The process runs in its own process group with a minimal environment (see `ExecEnvironment`). The result is
/// taken when it exits, even if a background process it started still holds its stdout; whatever it left running
/// in its group is then killed. When the worker cancels the task (shutdown past the grace period, `revoke
/// --terminate`), the group gets SIGTERM, then SIGKILL `options.killTimeout` seconds later, and the handler throws
/// `CancellationError`. At the soft time limit the group gets SIGTERM: a command that exits then answers as usual
/// (exit 0 with its output is a SUCCESS), one killed by it fails with `SoftTimeLimitExceeded`. At the hard time
/// limit the group gets SIGKILL and the task fails with `TimeLimitExceeded`. Waiting never blocks a Swift
/// concurrency thread.
public struct ExecHandler: TaskHandler {
    public let command: [String]
    public let options: ExecOptions

    public init(command: [String], options: ExecOptions = ExecOptions()) {
        self.command = command
        self.options = options
    }

    /// Parses `NAME=COMMAND LINE` as given to `amqp-worker --exec`, splitting the command on spaces. A spec
    /// without a name or a command throws a `ConfigError` for `--exec` (a bad option, not a task that failed).
    public static func parse(_ spec: String) throws -> (name: String, handler: ExecHandler) {
        let invalid = ConfigError(
            file: "--exec", line: nil, key: "",
            message: "expected NAME=COMMAND (a task name, '=', the command line, e.g. resize=python3 resize.py), got '\(spec)'")
        guard let equals = spec.firstIndex(of: "=") else { throw invalid }
        let name = String(spec[..<equals])
        let command = spec[spec.index(after: equals)...].split(separator: " ").map(String.init)
        guard !name.isEmpty, !command.isEmpty else { throw invalid }
        return (name, ExecHandler(command: command))
    }

    public func run(_ context: TaskContext) async throws -> JSONValue {
        let input = JSONValue.object([
            "id": .string(context.taskId), "task": .string(context.taskName), "args": .array(context.message.args),
            "kwargs": .object(context.message.kwargs), "retries": .int(context.retries),
        ]).jsonData()
        let outcome = try await ExecProcess(command: command, options: options).run(
            stdin: input, signals: context.signals, onProgress: ExecProgress.reporter(for: context))
        if outcome.stops.contains(.timeLimit) {
            throw TaskFailure(
                type: "TimeLimitExceeded", message: "\(context.message.timeLimit.hard?.secondsValue ?? 0)",
                module: "billiard.exceptions")
        }
        if outcome.stops.contains(.cancelled) { throw CancellationError() }
        if outcome.stops.contains(.outputTooLarge) {
            throw TaskFailure(
                type: "ExecOutputTooLarge",
                message: "\(command[0]) wrote more than \(options.stdoutLimit) bytes to stdout, the limit (stdout_limit in [tasks.\"\(context.taskName)\"]), so it was stopped; return large results by reference (a file or object-store path)")
        }
        switch outcome.status {
        case .exited(0):
            let text = String(decoding: outcome.stdout, as: UTF8.self).trimmingWhitespaceAndNewlines()
            if text.isEmpty { return .null }
            return (try? JSONValue.parse(Data(text.utf8))) ?? .string(text)
        case .exited(75):
            throw TaskRetry(reason: TaskFailure(type: "TemporaryFailure", message: outcome.stderrTail(orExit: 75)))
        case .exited(let code):
            throw TaskFailure(type: "ProcessError", message: outcome.stderrTail(orExit: code))
        case .signaled where outcome.stops.contains(.softTimeLimit):
            throw SoftTimeLimitExceeded(limit: context.message.timeLimit.soft ?? .zero)
        case .signaled(let signal):
            throw TaskFailure(
                type: "WorkerLostError", message: "\(command[0]) was killed by signal \(signal)",
                module: "billiard.exceptions")
        case .unknown:
            throw TaskFailure(
                type: "WorkerLostError",
                message: "\(command[0]) ended but its exit status was lost (is SIGCHLD ignored in the worker?)",
                module: "billiard.exceptions")
        }
    }
}

/// How an exec handler runs its command: its environment, how much output it may write, and how long it gets
/// between SIGTERM and SIGKILL. `[tasks."NAME"]` sets these with `env`, `inherit_env`, `stdout_limit`,
/// `stderr_limit` and `kill_timeout`.
public struct ExecOptions: Sendable, Hashable {
    /// Variables set for the command (over the minimal environment and the inherited ones).
    public var environment: [String: String] = [:]
    /// Names of the worker's variables the command also gets (`NAME`, or `PREFIX*`); by default only PATH, HOME,
    /// USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ and TMPDIR are passed, never `AMQP_URL` or other secrets.
    public var inheritedEnvironment: [String] = []
    /// Bytes of stdout (the result) kept; more fails the task with `ExecOutputTooLarge` and stops the command.
    public var stdoutLimit = 1 << 20
    /// Bytes of stderr kept, the last ones: a failure's message is this tail.
    public var stderrLimit = 64 << 10
    /// Time between SIGTERM and SIGKILL when the command is stopped.
    public var killTimeout: Duration = .seconds(5)

    public init() {}

    /// The options `[tasks."NAME"]` gives, defaults for the rest.
    public init(settings: TaskSettings) {
        environment = settings.env
        inheritedEnvironment = settings.inheritEnv
        if let stdoutLimit = settings.stdoutLimit { self.stdoutLimit = stdoutLimit }
        if let stderrLimit = settings.stderrLimit { self.stderrLimit = stderrLimit }
        if let killTimeout = settings.killTimeout { self.killTimeout = killTimeout }
    }
}

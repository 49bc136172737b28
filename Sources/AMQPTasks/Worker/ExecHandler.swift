import Foundation

/// Runs a task as a process, so services in any language can be workers.
///
/// The process gets `{"id", "task", "args", "kwargs", "retries"}` as JSON on stdin, with no shell in between
/// (`command` is an argument vector). Its stdout, parsed as JSON (or taken as a string when it is not JSON), is
/// the result. Exit 0 → SUCCESS; exit 75 (EX_TEMPFAIL) → retry; another exit code → FAILURE with the tail of
/// stderr; killed by a signal → FAILURE `WorkerLostError`. Waiting does not block a Swift concurrency thread.
public struct ExecHandler: TaskHandler {
    public let command: [String]

    public init(command: [String]) { self.command = command }

    /// Parses `NAME=COMMAND LINE` as given to `amqp-worker --exec`, splitting the command on spaces.
    public static func parse(_ spec: String) throws -> (name: String, handler: ExecHandler) {
        guard let equals = spec.firstIndex(of: "=") else {
            throw TaskFailure(type: "ValueError", message: "--exec wants NAME=COMMAND, got '\(spec)'")
        }
        let name = String(spec[..<equals])
        let command = spec[spec.index(after: equals)...].split(separator: " ").map(String.init)
        guard !name.isEmpty, !command.isEmpty else {
            throw TaskFailure(type: "ValueError", message: "--exec wants NAME=COMMAND, got '\(spec)'")
        }
        return (name, ExecHandler(command: command))
    }

    public func run(_ context: TaskContext) async throws -> JSONValue {
        let input = JSONValue.object([
            "id": .string(context.taskId), "task": .string(context.taskName), "args": .array(context.message.args),
            "kwargs": .object(context.message.kwargs), "retries": .int(context.retries),
        ]).jsonData()
        let outcome = try await ExecProcess(command: command).run(stdin: input)
        switch outcome.status {
        case .exited(0):
            let text = String(decoding: outcome.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { return .null }
            return (try? JSONValue.parse(Data(text.utf8))) ?? .string(text)
        case .exited(75):
            throw TaskRetry(reason: TaskFailure(type: "TemporaryFailure", message: outcome.stderrTail(orExit: 75)))
        case .exited(let code):
            throw TaskFailure(type: "ProcessError", message: outcome.stderrTail(orExit: code))
        case .signaled(let signal):
            throw TaskFailure(
                type: "WorkerLostError", message: "\(command[0]) was killed by signal \(signal)",
                module: "billiard.exceptions")
        }
    }
}

/// One run of a process with stdin, stdout and stderr; waits on a Dispatch thread, not on the cooperative pool.
struct ExecProcess {
    let command: [String]

    enum Status: Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    struct Outcome {
        var status: Status
        var stdout: Data
        var stderr: Data

        func stderrTail(orExit code: Int32) -> String {
            let text = String(decoding: stderr.suffix(2000), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? "exited with status \(code)" : text
        }
    }

    func run(stdin input: Data) async throws -> Outcome {
        // A process that exits without reading its stdin closes the pipe: writing then raises SIGPIPE, which
        // must fail the write, not kill the worker.
        signal(SIGPIPE, SIG_IGN)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.resolve(command[0]))
        process.arguments = Array(command.dropFirst())
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let box = ProcessBox(process)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, Error>) in
                DispatchQueue.global().async {
                    // Write stdin and drain both pipes concurrently so a chatty process never blocks on a full pipe.
                    let group = DispatchGroup()
                    let out = DataBox(), err = DataBox()
                    for (pipe, box) in [(stdout, out), (stderr, err)] {
                        group.enter()
                        DispatchQueue.global().async {
                            box.data = pipe.fileHandleForReading.readDataToEndOfFile()
                            group.leave()
                        }
                    }
                    try? stdin.fileHandleForWriting.write(contentsOf: input)
                    try? stdin.fileHandleForWriting.close()
                    group.wait()
                    process.waitUntilExit()
                    let status: Status = process.terminationReason == .uncaughtSignal
                        ? .signaled(process.terminationStatus) : .exited(process.terminationStatus)
                    continuation.resume(returning: Outcome(status: status, stdout: out.data, stderr: err.data))
                }
            }
        } onCancel: {
            box.process.terminate()
        }
    }

    /// An absolute path, or the first match on PATH.
    static func resolve(_ program: String) throws -> String {
        if program.contains("/") { return program }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw TaskFailure(type: "FileNotFoundError", message: "\(program) is not on PATH")
    }
}

/// Output read by one Dispatch thread and used after `DispatchGroup.wait()`, which orders the accesses.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}

private final class ProcessBox: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }
}

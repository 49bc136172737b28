import AMQP
import FoundationEssentials
import Glibc
import Dispatch
import Synchronization

/// One run of a command: started in its own process group with a minimal environment, fed its input, its output
/// captured within limits. It ends when the command exits (not when its stdout closes). Waiting and pumping happen
/// on two threads of their own, never on the cooperative pool.
struct ExecProcess {
    let command: [String]
    let options: ExecOptions

    /// Why the worker stopped the command.
    enum Stop: Sendable {
        /// Shutdown or `revoke --terminate`: SIGTERM, then SIGKILL after `killTimeout`.
        case cancelled
        case outputTooLarge
        /// The soft time limit: SIGTERM only; the command may still exit with its own result.
        case softTimeLimit
        /// The hard time limit: SIGKILL at once.
        case timeLimit
    }

    struct Outcome {
        var status: ChildProcess.Status
        var stdout: Data
        var stderr: Data
        var stops: Set<Stop>

        func stderrTail(orExit code: Int32) -> String {
            let text = String(decoding: stderr, as: UTF8.self).trimmingWhitespaceAndNewlines()
            return text.isEmpty ? "exited with status \(code)" : text
        }
    }

    /// Runs the command with `input` on its stdin. `signals` stops it: the soft limit with SIGTERM, the hard limit
    /// with SIGKILL, an abandon as a cancellation does (SIGTERM, SIGKILL `killTimeout` later).
    /// Each line the command writes to its progress descriptor (`ExecProgress`) goes to `onProgress`, on the pump's
    /// thread.
    func run(
        stdin input: Data, signals: HandlerSignals = HandlerSignals(),
        onProgress: @escaping @Sendable (ProgressLines.Line) -> Void = { _ in }
    ) async throws -> Outcome {
        try Task.checkCancellation()
        // A process that exits without reading its stdin closes the pipe: writing then raises SIGPIPE, which
        // must fail the write, not kill the worker.
        signal(SIGPIPE, SIG_IGN)
        var environment = ExecEnvironment.make(for: options, from: ProcessInfo.processInfo.environment)
        environment[ExecProgress.environmentVariable] = "\(ExecProgress.descriptor)"
        let path = try Self.resolve(command[0], path: environment["PATH"] ?? ExecEnvironment.fallbackPath)
        let pipes = try PipeSet()
        let child: ChildProcess
        do {
            child = try ChildProcess(
                path: path, arguments: command, environment: environment, stdin: pipes.stdin.read,
                stdout: pipes.stdout.write, stderr: pipes.stderr.write, progress: pipes.progress.write)
        } catch {
            pipes.closeAll()
            throw TaskFailure(type: "OSError", message: "\(error)")
        }
        pipes.closeChildEnds()
        let ending = GroupEnding(child: child, killTimeout: options.killTimeout.secondsValue)
        let pump = OutputPump(
            input: input, stdin: pipes.stdin.write, stdout: pipes.stdout.read, stderr: pipes.stderr.read,
            exited: pipes.exited.read, stdoutLimit: options.stdoutLimit, stderrLimit: options.stderrLimit,
            onOverflow: { ending.stop(.outputTooLarge) }, progress: pipes.progress.read, onProgress: onProgress)
        let exitedNotice = pipes.exited.write
        let observer = signals.observe { event in
            switch event {
            case .softLimit: ending.stop(.softTimeLimit)
            case .hardLimit: ending.killNow(.timeLimit)
            case .abandoned: ending.stop(.cancelled)
            }
        }
        defer { signals.stopObserving(observer) }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                let captured = CaptureBox()
                DetachedThread.start {
                    captured.set(pump.run())
                }
                DetachedThread.start {
                    let status = child.waitForExit()
                    let reapNow = ending.leaderEnded()
                    var byte: UInt8 = 1
                    _ = write(exitedNotice, &byte, 1)
                    close(exitedNotice)
                    let capture = captured.wait()
                    if reapNow { child.reap() }
                    continuation.resume(
                        returning: Outcome(
                            status: status, stdout: capture.stdout, stderr: capture.stderr,
                            stops: ending.reasons.union(capture.overflowed ? [.outputTooLarge] : [])))
                }
            }
        } onCancel: {
            // The soft limit cancels the task too, but asks only for SIGTERM (sent by the observer above).
            if !signals.has(.softLimit) { ending.stop(.cancelled) }
        }
    }

    /// An absolute path, or the first match on the command's PATH.
    static func resolve(_ program: String, path: String) throws -> String {
        if program.contains("/") { return program }
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TaskFailure(type: "FileNotFoundError", message: "\(program) is not on PATH (\(path))")
    }
}

/// The capture, handed from the pump's thread to the waiting thread.
private final class CaptureBox: Sendable {
    private let ready = DispatchSemaphore(value: 0)
    private let capture = Mutex(OutputPump.Capture())

    func set(_ capture: OutputPump.Capture) {
        self.capture.withLock { $0 = capture }
        ready.signal()
    }

    /// Blocks until `set`.
    func wait() -> OutputPump.Capture {
        ready.wait()
        return capture.withLock { $0 }
    }
}

/// The pipes of one run: the command's stdin, stdout and stderr, and the notice that it exited. All are
/// close-on-exec; the command gets its ends through `dup2`.
private struct PipeSet {
    struct Pipe {
        let read: Int32
        let write: Int32
    }

    let stdin: Pipe
    let stdout: Pipe
    let stderr: Pipe
    let exited: Pipe
    /// The command's progress descriptor (`ExecProgress`).
    let progress: Pipe

    init() throws {
        var made: [Pipe] = []
        for _ in 0..<5 {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else {
                let code = errno
                for pipe in made { close(pipe.read); close(pipe.write) }
                throw TaskFailure(type: "OSError", message: "cannot make a pipe: \(String(cString: strerror(code)))")
            }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            made.append(Pipe(read: fds[0], write: fds[1]))
        }
        stdin = made[0]
        stdout = made[1]
        stderr = made[2]
        exited = made[3]
        progress = made[4]
    }

    /// After the spawn: the command holds its own copies.
    func closeChildEnds() {
        for fd in [stdin.read, stdout.write, stderr.write, progress.write] { close(fd) }
    }

    func closeAll() {
        for pipe in [stdin, stdout, stderr, exited, progress] {
            close(pipe.read)
            close(pipe.write)
        }
    }
}

import FoundationEssentials
import Glibc
import Synchronization

/// A process started as the leader of its own process group, so it and everything it starts are signalled together.
///
/// It starts with every signal at its default disposition and none blocked: the worker ignores SIGPIPE, SIGTERM and
/// SIGINT (it handles them itself), and `exec` would pass ignored signals on, making the command deaf to SIGTERM.
/// Descriptors other than stdin, stdout and stderr are closed in the child.
///
/// Waiting (`waitForExit`) blocks a thread: call it on a thread of its own, never on the cooperative pool. The
/// process stays a zombie until `reap()`, which keeps its process-group id reserved, so signalling the group never
/// reaches an unrelated process that got the same id.
final class ChildProcess: Sendable {
    /// How a process ended.
    enum Status: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
        /// The status was taken by someone else (the worker's SIGCHLD set to SIG_IGN, or a stray `waitpid(-1)`).
        case unknown
    }

    /// Why a process could not be started.
    struct SpawnError: Error, CustomStringConvertible {
        let path: String
        let code: Int32
        var description: String { "cannot start \(path): \(String(cString: strerror(code)))" }
    }

    let pid: pid_t
    private let reaped = Mutex(false)

    /// Starts `path` with `arguments` (its argv, `arguments[0]` included) and exactly `environment`, with the given
    /// descriptors as its stdin, stdout and stderr, and `progress`, when given, as its descriptor 3.
    init(
        path: String, arguments: [String], environment: [String: String], stdin: Int32, stdout: Int32, stderr: Int32,
        progress: Int32? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        if let progress { posix_spawn_file_actions_adddup2(&actions, progress, ExecProgress.descriptor) }
        Self.addCloseFrom(progress == nil ? 3 : ExecProgress.descriptor + 1, to: &actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SpawnError(path: path, code: result) }
        self.pid = pid
    }

    /// Sends `signal` to the process's whole group; does nothing once the process is reaped.
    func signalGroup(_ signal: Int32) {
        reaped.withLock { reaped in
            if !reaped { _ = kill(-pid, signal) }
        }
    }

    /// Blocks until the process ends and returns how; the process stays a zombie (and its group id reserved).
    func waitForExit() -> Status {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            if errno != EINTR { return .unknown }
        }
        let code = info.si_code
        let value = info._sifields._sigchld.si_status
        return code == Int32(CLD_EXITED) ? .exited(value) : .signaled(value)
    }

    /// Collects the ended process; after this the group is never signalled again. Only the first call waits: a
    /// later one could otherwise collect another child that got the same process id.
    func reap() {
        reaped.withLock { reaped in
            guard !reaped else { return }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            reaped = true
        }
    }

    /// glibc 2.34's `posix_spawn_file_actions_addclosefrom_np`, looked up at run time because Swift's Glibc module
    /// does not declare it; without it, descriptors the worker opened with close-on-exec still close at exec.
    private static func addCloseFrom(_ lowest: Int32, to actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
        guard let symbol = closeFromSymbol else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, lowest)
    }

    private nonisolated(unsafe) static let closeFromSymbol: UnsafeMutableRawPointer? = dlsym(
        dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np")
}

import FoundationEssentials
import Glibc

/// Feeds a command its stdin and captures its stdout and stderr, all at once on one thread (`poll`), so a command
/// that writes much before it reads, or fills one pipe while the other is read, never deadlocks.
///
/// Capture is bounded: stdout up to `stdoutLimit` bytes (past it, `onOverflow` is called once and further output
/// is read and dropped), stderr as its last `stderrLimit` bytes. `run()` returns when the `exited` descriptor becomes
/// readable (the command ended), after taking what is already in the pipes, not when the pipes reach end of file:
/// a background process the command started may hold them open for much longer.
// Unchecked: its state is only touched by the one thread that runs `run()`; it is Sendable only to be handed there.
final class OutputPump: @unchecked Sendable {
    /// What was captured.
    struct Capture {
        var stdout = Data()
        var stderr = Data()
        var overflowed = false
    }

    private var input: Data
    private var inputOffset = 0
    private var stdin: Int32
    private var stdout: Int32
    private var stderr: Int32
    private let exited: Int32
    private let stdoutLimit: Int
    private let stderrLimit: Int
    private let onOverflow: @Sendable () -> Void
    private var capture = Capture()
    /// The read end of the command's progress descriptor (see `ExecProgress`), or -1.
    private var progress: Int32
    private var progressLines = ProgressLines()
    private let onProgress: @Sendable (ProgressLines.Line) -> Void

    /// Takes ownership of the descriptors: `stdin` (write end), `stdout`, `stderr` and `exited` (read ends) are closed
    /// by `run()`.
    init(
        input: Data, stdin: Int32, stdout: Int32, stderr: Int32, exited: Int32, stdoutLimit: Int, stderrLimit: Int,
        onOverflow: @escaping @Sendable () -> Void, progress: Int32 = -1,
        onProgress: @escaping @Sendable (ProgressLines.Line) -> Void = { _ in }
    ) {
        self.input = input
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.exited = exited
        self.stdoutLimit = stdoutLimit
        self.stderrLimit = stderrLimit
        self.onOverflow = onOverflow
        self.progress = progress
        self.onProgress = onProgress
        for fd in [stdin, stdout, stderr, progress] where fd >= 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        if input.isEmpty { closeStdin() }
    }

    /// Pumps until the command has exited; blocks the calling thread.
    func run() -> Capture {
        var ended = false
        while !ended {
            // The exit notice first: when the command has ended, nothing else matters.
            var fds = [pollfd(fd: exited, events: Int16(POLLIN), revents: 0)]
            for (fd, events) in [(stdin, POLLOUT), (stdout, POLLIN), (stderr, POLLIN), (progress, POLLIN)] where fd >= 0 {
                fds.append(pollfd(fd: fd, events: Int16(events), revents: 0))
            }
            guard poll(&fds, nfds_t(fds.count), -1) >= 0 else {
                if errno == EINTR { continue }
                break  // cannot happen with valid descriptors; stop rather than spin
            }
            let ready = Set(fds.filter { $0.revents != 0 }.map(\.fd))
            if ready.contains(exited) { ended = true }
            if stdin >= 0, ready.contains(stdin) { feedInput() }
            if stdout >= 0, ready.contains(stdout) { _ = take(from: &stdout, isStdout: true) }
            if stderr >= 0, ready.contains(stderr) { _ = take(from: &stderr, isStdout: false) }
            if progress >= 0, ready.contains(progress) { _ = takeProgress() }
        }
        // The command has exited: what it wrote is in the pipes now. Take it, but only so much: a process that left
        // the group (setsid) and keeps writing must not keep us here.
        var budget = stdoutLimit + stderrLimit + 65536
        while budget > 0, stdout >= 0, let count = take(from: &stdout, isStdout: true) { budget -= count }
        while budget > 0, stderr >= 0, let count = take(from: &stderr, isStdout: false) { budget -= count }
        budget = 65536
        while budget > 0, progress >= 0, let count = takeProgress() { budget -= count }
        if let last = progressLines.finish() { onProgress(last) }
        for fd in [stdin, stdout, stderr, exited, progress] where fd >= 0 { close(fd) }
        progress = -1
        stdin = -1
        stdout = -1
        stderr = -1
        capture.stderr = capture.stderr.suffix(stderrLimit)
        return capture
    }

    private func feedInput() {
        let written = input.withUnsafeBytes { buffer in
            write(stdin, buffer.baseAddress! + inputOffset, buffer.count - inputOffset)
        }
        if written > 0 {
            inputOffset += written
            if inputOffset == input.count { closeStdin() }
        } else if written < 0, errno != EAGAIN, errno != EINTR {
            closeStdin()  // EPIPE: the command closed its stdin without reading it all; that is its business
        }
    }

    private func closeStdin() {
        if stdin >= 0 { close(stdin) }
        stdin = -1
        input = Data()
    }

    /// Reads what is available; returns the byte count, or nil when nothing more is there now (closing at end of
    /// file or on an error).
    private func take(from fd: inout Int32, isStdout: Bool) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = read(fd, &buffer, buffer.count)
        if count > 0 {
            append(buffer[..<count], isStdout: isStdout)
            return count
        }
        if count == 0 || (errno != EAGAIN && errno != EINTR) {
            close(fd)
            fd = -1
        }
        return nil
    }

    /// Reads progress lines and hands each complete one on; like `take`, nil when nothing more is there now.
    private func takeProgress() -> Int? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = read(progress, &buffer, buffer.count)
        if count > 0 {
            for line in progressLines.feed(buffer[..<count]) { onProgress(line) }
            return count
        }
        if count == 0 || (errno != EAGAIN && errno != EINTR) {
            close(progress)
            progress = -1
        }
        return nil
    }

    private func append(_ bytes: ArraySlice<UInt8>, isStdout: Bool) {
        if isStdout {
            guard !capture.overflowed else { return }
            if capture.stdout.count + bytes.count > stdoutLimit {
                capture.overflowed = true
                capture.stdout = Data()
                onOverflow()
            } else {
                capture.stdout.append(contentsOf: bytes)
            }
        } else {
            capture.stderr.append(contentsOf: bytes)
            // Keep the tail: trim once it is twice the limit, so trimming costs O(1) per byte on average.
            if capture.stderr.count > 2 * max(stderrLimit, 4096) {
                capture.stderr = capture.stderr.suffix(stderrLimit)
            }
        }
    }
}

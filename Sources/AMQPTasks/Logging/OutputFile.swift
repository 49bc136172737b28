#if canImport(Glibc)
    import Glibc
#endif

/// A file the worker writes lines to (its log, its trace log): what `FileHandle` did here, without the full
/// Foundation. Each `write` writes all its bytes (retrying short writes and interrupted calls) or throws.
public struct OutputFile: Sendable {
    /// The open file descriptor written to.
    public let descriptor: Int32

    /// Writes to an already open file descriptor (which stays the caller's to close).
    public init(descriptor: Int32) { self.descriptor = descriptor }

    /// Standard error (file descriptor 2).
    public static let standardError = OutputFile(descriptor: STDERR_FILENO)

    /// Opens `path` for appending, creating it (mode 0666 less the umask) when missing. Throws
    /// `OutputFileError` saying why the file cannot be opened.
    public static func appending(to path: String) throws(OutputFileError) -> OutputFile {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw OutputFileError(operation: "open \(path) for appending", code: errno) }
        return OutputFile(descriptor: descriptor)
    }

    /// Writes all of `bytes`. Throws `OutputFileError` when the file takes no more (closed, full, gone).
    public func write(_ bytes: some Collection<UInt8>) throws(OutputFileError) {
        let failure: Int32? = Array(bytes).withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        if let failure { throw OutputFileError(operation: "write to file descriptor \(descriptor)", code: failure) }
    }
}

/// A file that could not be opened or written: what failed, and the system's reason.
public struct OutputFileError: Error, CustomStringConvertible {
    /// What failed: `open PATH for appending`, `write to file descriptor N`.
    public let operation: String
    /// The `errno` value.
    public let code: Int32

    public var description: String { "cannot \(operation): \(String(cString: strerror(code)))" }
}

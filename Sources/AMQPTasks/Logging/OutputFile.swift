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
        guard descriptor >= 0 else { throw OutputFileError(path: path, code: errno) }
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
        if let failure { throw OutputFileError(path: "file descriptor \(descriptor)", code: failure) }
    }
}

/// A file that could not be opened or written: which, and the system's reason.
public struct OutputFileError: Error, CustomStringConvertible {
    /// The path, or `file descriptor N` for a write.
    public let path: String
    /// The `errno` value.
    public let code: Int32

    public var description: String { "cannot write to \(path): \(String(cString: strerror(code)))" }
}

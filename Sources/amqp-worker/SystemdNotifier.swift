import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// Tells systemd how the service is doing, as `sd_notify(3)` does, without linking libsystemd: one datagram of
/// newline-separated `KEY=VALUE` fields (`READY=1`, `STOPPING=1`, `STATUS=…`) to the unix socket named by
/// `NOTIFY_SOCKET`, which systemd sets for a `Type=notify` unit. The name is a file path, or an abstract-namespace
/// socket when it starts with `@`. Without `NOTIFY_SOCKET` there is no notifier and nothing is sent.
struct SystemdNotifier: Sendable {
    /// The socket address as `NOTIFY_SOCKET` gives it: `/run/systemd/notify` or `@abstract-name`.
    let socketName: String

    /// The notifier for `NOTIFY_SOCKET`, or nil when it is unset or empty. Removes the variable from this process's
    /// environment, so the processes it starts (exec handlers with `inherit_env`) cannot notify in its name.
    static func fromEnvironment() -> SystemdNotifier? {
        guard let name = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !name.isEmpty else { return nil }
        unsetenv("NOTIFY_SOCKET")
        return SystemdNotifier(socketName: name)
    }

    /// Sends `fields` (e.g. `["READY=1", "STATUS=consuming celery"]`) as one datagram. Throws
    /// `SystemdNotifyError` when the name is not a unix socket address or the datagram cannot be sent.
    func send(_ fields: [String]) throws {
        // A newline inside a STATUS text would start a new field: keep each field on its line. Byte by byte: the
        // stdlib's `replacing("\n", …)` compares characters and leaves the "\n" of a "\r\n" (one character).
        let lines = fields.map { field in field.utf8.map { $0 == UInt8(ascii: "\n") ? UInt8(ascii: " ") : $0 } }
        let message = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        var path = Array(socketName.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract {
            path[0] = 0  // The abstract namespace: a leading NUL, and the length counts only the name's bytes.
        } else {
            guard path.first == UInt8(ascii: "/") else {
                throw SystemdNotifyError(
                    "NOTIFY_SOCKET=\(socketName) is neither an absolute path nor an @abstract socket name; unset it outside systemd")
            }
            path.append(0)
        }
        guard path.count <= capacity else {
            throw SystemdNotifyError("NOTIFY_SOCKET=\(socketName) is longer than a unix socket address (\(capacity - 1) bytes)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in bytes.copyBytes(from: path) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count)

        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw SystemdNotifyError("cannot make a unix datagram socket to notify systemd: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
            }
        }
        guard sent == message.count else {
            throw SystemdNotifyError("cannot notify systemd at NOTIFY_SOCKET=\(socketName): \(String(cString: strerror(errno)))")
        }
    }
}

/// A notification to systemd that could not be sent; the worker logs it and goes on.
struct SystemdNotifyError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

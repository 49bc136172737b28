import CRabbitMQShim

#if canImport(Glibc)
    import Glibc
#endif

/// Starts a detached POSIX thread: what Foundation's `Thread` did here, without linking the full Foundation.
package enum DetachedThread {
    /// Runs `body` on a new detached thread named `name` (what `top -H` and debuggers show; Linux keeps the first 15
    /// bytes), with a stack of `stackSize` bytes (nil: the system's default, as `Thread`'s). A thread that cannot be
    /// made (the process is out of threads or memory) stops the process, as `Thread.start()` does.
    package static func start(name: String? = nil, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        if let stackSize {
            let result = pthread_attr_setstacksize(&attributes, stackSize)
            precondition(result == 0, "cannot give a thread a stack of \(stackSize) bytes: \(String(cString: strerror(result)))")
        }
        let start = Unmanaged.passRetained(ThreadStart(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { context in
            let start = Unmanaged<ThreadStart>.fromOpaque(context!).takeRetainedValue()
            start.run()
            return nil
        }, start)
        guard result == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(start).release()
            fatalError("cannot start a thread\(name.map { " (\($0))" } ?? ""): \(String(cString: strerror(result)))")
        }
    }

    /// Blocks the calling thread for `seconds` (fractions included), as `Thread.sleep(forTimeInterval:)`.
    package static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        let whole = seconds.rounded(.down)
        var request = timespec(tv_sec: Int(whole), tv_nsec: Int((seconds - whole) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

/// What a new thread runs: its name, then its body.
private final class ThreadStart {
    let name: String?
    let body: @Sendable () -> Void

    init(name: String?, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }

    func run() {
        if let name { _ = amqp_tasks_name_current_thread(Self.kernelName(name)) }
        body()
    }

    /// What Linux keeps of a thread's name: its first 15 bytes, cut here at a character boundary so the name stays
    /// UTF-8 (the C shim's byte cut would split `é`).
    static func kernelName(_ name: String) -> String {
        var kept = ""
        for character in name {
            if kept.utf8.count + character.utf8.count > 15 { break }
            kept.append(character)
        }
        return kept
    }
}

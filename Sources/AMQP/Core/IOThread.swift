import FoundationEssentials
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The thread that serves one connection, and the check that code meant for it runs on it.
///
/// rabbitmq-c is not thread-safe, so everything a connection's C state touches is confined to this thread. The
/// thread records its identity when it starts; `assertCurrent()` (what swift-nio's `assertInEventLoop` and GRDB's
/// `SchedulingWatchdog` do) catches, in debug builds, any code that reaches confined state from another thread.
final class IOThread: Sendable {
    /// The `pthread_t` of the running thread, or 0 before it starts and after it ends (so a later thread that
    /// gets the same `pthread_t` is never mistaken for it).
    private let owner = Atomic<UInt>(0)

    /// Starts the thread, named `name` (it shows in `top -H` and debuggers), and runs `body` on it.
    func start(name: String, stackSize: Int, _ body: @escaping @Sendable () -> Void) {
        DetachedThread.start(name: name, stackSize: stackSize) { [self] in
            owner.store(UInt(pthread_self()), ordering: .releasing)
            body()
            owner.store(0, ordering: .releasing)
        }
    }

    /// True when the caller runs on this I/O thread.
    var isCurrent: Bool {
        let thread = owner.load(ordering: .acquiring)
        return thread != 0 && pthread_equal(pthread_t(thread), pthread_self()) != 0
    }

    /// Stops a debug build when the caller is not on this I/O thread: confined state was reached from elsewhere,
    /// a data race on rabbitmq-c's connection. Free in release builds.
    func assertCurrent(
        _ what: @autoclosure () -> String = "this", file: StaticString = #fileID, line: UInt = #line
    ) {
        assert(isCurrent, "\(what()) is I/O thread only, but was used on another thread", file: file, line: line)
    }

    /// The stack the I/O thread needs: rabbitmq-c decodes nested header tables and arrays recursively, so a hostile
    /// message nested as deep as a frame allows (one level per 5 bytes) must not overflow it. The stack is reserved,
    /// not touched: only the pages a deep message uses become resident.
    static func stackSize(frameMax: Int) -> Int {
        let levels = max(131_072, min(frameMax, 1 << 22)) / 5
        return max(8 << 20, levels * 512)
    }
}

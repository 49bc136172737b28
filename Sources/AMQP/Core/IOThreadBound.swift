/// A value that only one connection's I/O thread may touch, as swift-nio's `NIOLoopBound`: it can be stored in a
/// `Sendable` type, and every read of `value` checks the thread (in debug builds).
// @unchecked: `value` is the only way to the wrapped value, and it checks that the caller is on `thread`.
struct IOThreadBound<Value: AnyObject>: @unchecked Sendable {
    private let wrapped: Value
    let thread: IOThread

    init(_ value: Value, thread: IOThread) {
        wrapped = value
        self.thread = thread
    }

    /// The value; only on the I/O thread.
    var value: Value {
        thread.assertCurrent("connection state (\(Value.self))")
        return wrapped
    }
}

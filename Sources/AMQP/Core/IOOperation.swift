/// Work for the I/O thread: `run` there, or `fail` if the connection closed before it could run.
struct IOOperation: Sendable {
    let run: @Sendable (ConnectionCore) -> Void
    let fail: @Sendable (AMQPError) -> Void
}

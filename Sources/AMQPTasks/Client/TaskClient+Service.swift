import ServiceLifecycle

/// A `TaskClient` runs as a swift-service-lifecycle service, next to the services that use it:
///
/// ```swift
/// let client = try await TaskClient.connect(url: url)
/// let group = ServiceGroup(services: [client, api], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()  // on SIGTERM: the client is closed, its result receiver ended
/// ```
/// A group shuts its services down in reverse order: list the client before the services that send with it, so
/// it closes after them.
extension TaskClient: Service {
    /// Keeps the client open until graceful shutdown, cancellation or `close()`, then closes it: waiting `result`
    /// calls fail with `TaskClientError.closed`, and `run()` returns once the result receiver has ended.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.waitUntilClosed()
        }
        await close()
    }
}

import AMQP
import FoundationEssentials
import Logging
import Metrics
import Tracing
import ServiceLifecycle

/// Sends tasks and receives their states and results.
///
/// ```swift
/// let client = try await TaskClient.connect(url: "amqp://guest:guest@127.0.0.1:5672/%2f")
/// let id = try await client.send("demo.add", args: [2, 3])      // returns once the broker confirmed
/// let result = try await client.result(for: id, timeout: .seconds(10))
/// ```
/// `send` publishes a persistent Celery v2 message with `mandatory` and waits for the publisher confirm: a task
/// is never reported as sent unless the broker took it, and an unroutable one fails with `.unroutable`. Results
/// come back on the client's own durable reply queue (`reply_to`, matched by `correlation_id`), shared by every
/// caller of this client; it expires a day after the client stops using it, as Celery's does.
///
/// The client survives a lost connection (see `ReconnectPolicy`): it reconnects with backoff, trying each broker
/// URL in turn, resumes consuming its reply queue, and publishes again every send the broker had not confirmed.
/// A send therefore delivers its task at least once; it fails with `TaskClientError.timedOut` only when the broker
/// stayed out of reach for the whole `sendRetryWindow`. Every failure of the client is a `TaskClientError`.
///
/// A client is a swift-service-lifecycle `Service`: in a `ServiceGroup`, `run()` keeps it open until graceful
/// shutdown, then closes it.
///
/// Files: connecting and closing here; `TaskClient+Sending.swift` (messages, `send`, `sendBatch`),
/// `TaskClient+Results.swift` (`result`, `states`, `value`), `TaskClient+Receiving.swift` (the reply queue's
/// receivers), `TaskClient+Service.swift` (`run()`), `TaskClient+Canvas.swift` (groups, chords, chains).
public final class TaskClient: Sendable {
    /// The queue results are delivered to.
    public let replyQueue: String
    let link: ClientLink
    let router: ResultRouter
    /// Where tasks go when `SendOptions` names no queue or exchange.
    public let routes: TaskRouter
    /// How the client reconnects and how long a send keeps trying.
    public let reconnect: ReconnectPolicy
    let logger: Logger
    let republished = ManagedCounter()
    /// Where the client's metrics go (`TaskMetricNames.clientSends` and the others).
    let metrics: ClientMetrics
    /// The tasks consuming the reply queue; `close()` waits for them.
    let receivers = ResultReceivers()
    /// Which tracer traces the sends (a span `apply_async/<task>` each, its context in the message's headers).
    let tracing: TaskTracing

    private init(
        replyQueue: String, link: ClientLink, router: ResultRouter, routes: TaskRouter, reconnect: ReconnectPolicy,
        logger: Logger, metrics: ClientMetrics, tracing: TaskTracing
    ) {
        self.metrics = metrics
        self.tracing = tracing
        self.replyQueue = replyQueue
        self.link = link
        self.router = router
        self.routes = routes
        self.reconnect = reconnect
        self.logger = logger
    }

    /// Connects to the broker of a configuration file and routes tasks by its `[routes]` and `[tasks]`.
    public static func connect(
        configuration: TasksConfiguration, replyQueue: String? = nil, replicatedReplies: Bool? = nil,
        reconnect: ReconnectPolicy = ReconnectPolicy(), resultCache: ResultCacheLimits = ResultCacheLimits(),
        logger: Logger = Logger(label: "amqp-tasks.client")
    ) async throws -> TaskClient {
        try await connect(
            brokers: configuration.broker.connections, replyQueue: replyQueue, replicatedReplies: replicatedReplies,
            routes: TaskRouter(configuration: configuration), reconnect: reconnect, resultCache: resultCache,
            logger: logger)
    }

    /// Connects, declares the reply queue and starts consuming it. Fails at once if no broker answers now;
    /// after that, lost connections are re-established as `reconnect` says.
    /// - Parameter url: one `amqp://` URL, or several comma-separated (a cluster's nodes), tried in turn.
    /// - Parameter replyQueue: a stable name lets results sent while the client was away reach it after a restart.
    /// - Parameter replicatedReplies: declare the reply queue as a quorum queue, so results stay reachable while the
    ///   node that holds a classic queue is down. Nil (the default) means yes when `url` names several brokers (a
    ///   cluster), no for one broker. It costs a replication per result.
    /// - Parameter resultCache: how many results nobody has asked for yet are kept, and how long.
    public static func connect(
        url: String, replyQueue: String? = nil, replicatedReplies: Bool? = nil, routes: TaskRouter = TaskRouter(),
        reconnect: ReconnectPolicy = ReconnectPolicy(), resultCache: ResultCacheLimits = ResultCacheLimits(),
        logger: Logger = Logger(label: "amqp-tasks.client"), tracer: (any Tracer)? = nil
    ) async throws -> TaskClient {
        try await connect(
            brokers: ConnectionConfiguration.list(url), replyQueue: replyQueue, replicatedReplies: replicatedReplies,
            routes: routes, reconnect: reconnect, resultCache: resultCache, logger: logger, tracer: tracer)
    }

    /// Connects to the first of `brokers` that answers (see `connect(url:…)` for the other parameters).
    /// - Parameter metricsFactory: where the client reports its sends, confirm latency and republishes
    ///   (`TaskMetricNames.clientSends`…); by default the process's swift-metrics backend (none unless bootstrapped).
    /// - Parameter tracer: traces each send (span `apply_async/<task>`, a child of `ServiceContext.current`) and puts
    ///   its context in the message (W3C `traceparent` with a W3C tracer), so the worker's span continues the trace;
    ///   nil (the default) means the process's bootstrapped one, `InstrumentationSystem.tracer`.
    public static func connect(
        brokers: [ConnectionConfiguration], replyQueue: String? = nil, replicatedReplies: Bool? = nil,
        routes: TaskRouter = TaskRouter(), reconnect: ReconnectPolicy = ReconnectPolicy(),
        resultCache: ResultCacheLimits = ResultCacheLimits(), logger: Logger = Logger(label: "amqp-tasks.client"),
        metricsFactory: any MetricsFactory = MetricsSystem.factory, tracer: (any Tracer)? = nil
    ) async throws -> TaskClient {
        let queue = replyQueue ?? "amqp-tasks.reply.\(UUID().lowercasedString)"
        var arguments: FieldTable = ["x-expires": .int32(86_400_000)]
        if replicatedReplies ?? (brokers.count > 1) { arguments["x-queue-type"] = "quorum" }
        let link = ClientLink(brokers: brokers, replyQueue: queue, replyQueueArguments: arguments, logger: logger)
        let router = ResultRouter(limits: resultCache, logger: logger)
        let client = TaskClient(
            replyQueue: queue, link: link, router: router, routes: routes, reconnect: reconnect, logger: logger,
            metrics: ClientMetrics(factory: metricsFactory), tracing: TaskTracing(tracer))
        await link.setSessionHandler { [weak client] session in
            guard let client else { return }
            let replies = try await session.connection.openChannel()
            try await replies.setPrefetch(256)
            let consumer = try await replies.consume(queue: queue, exclusive: true)
            client.receivers.start { [weak client] in await client?.receiveResults(consumer, session: session) }
        }
        _ = try await link.session()
        return client
    }

    /// A channel on the client's current connection, for your own declarations or inspections.
    public func openChannel() async throws -> Channel {
        try await link.session().connection.openChannel()
    }

    /// How many publishes were repeated because their connection was lost before the broker confirmed them. Each
    /// may have reached a queue twice: a duplicate of this kind is the price of at-least-once.
    public var republishedCount: Int { republished.value }

    /// Results waiting for a caller to ask for them (or kept for `states(for:)`); bounded by `ResultCacheLimits`.
    public var unclaimedResultCount: Int { get async { await router.unclaimedCount } }

    /// Results dropped, oldest first, to stay within `ResultCacheLimits`.
    public var droppedResultCount: Int { get async { await router.droppedCount } }

    /// Closes the connection and returns once the reply queue's receiver has ended; waiting `result` calls fail
    /// with `TaskClientError.closed`, and so does every later call. Closing again does nothing more.
    public func close() async {
        await link.close()
        await receivers.stopAll()
        await router.failAll(TaskClientError.clientClosed("result"))
    }

    /// Returns once `close()` was called (or the calling task is cancelled).
    func waitUntilClosed() async {
        await link.waitUntilClosed()
    }

    /// Callers waiting in `result`, `states` or `value` (for tests).
    var waitingResultCount: Int { get async { await router.waitingCount } }

    /// True while a caller waits in `waitUntilClosed()`, as `run()` does (for tests).
    var isWaitingForClose: Bool { get async { await link.closeWaiterCount > 0 } }
}

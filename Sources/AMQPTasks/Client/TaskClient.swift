import AMQP
import Foundation
import Logging
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
/// shutdown, then closes it (see `TaskClient+Service.swift`).
public final class TaskClient: Sendable {
    /// The queue results are delivered to.
    public let replyQueue: String
    private let link: ClientLink
    private let router: ResultRouter
    /// Where tasks go when `SendOptions` names no queue or exchange.
    public let routes: TaskRouter
    /// How the client reconnects and how long a send keeps trying.
    public let reconnect: ReconnectPolicy
    private let logger: Logger
    private let republished = ManagedCounter()
    /// The tasks consuming the reply queue; `close()` waits for them.
    let receivers = ResultReceivers()

    private init(
        replyQueue: String, link: ClientLink, router: ResultRouter, routes: TaskRouter, reconnect: ReconnectPolicy,
        logger: Logger
    ) {
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
            url: configuration.broker.connectionURL, replyQueue: replyQueue, replicatedReplies: replicatedReplies,
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
        logger: Logger = Logger(label: "amqp-tasks.client")
    ) async throws -> TaskClient {
        let queue = replyQueue ?? "amqp-tasks.reply.\(UUID().uuidString.lowercased())"
        let brokers = url.split(separator: ",").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
        var arguments: FieldTable = ["x-expires": .int32(86_400_000)]
        if replicatedReplies ?? (brokers > 1) { arguments["x-queue-type"] = "quorum" }
        let link = ClientLink(urls: url, replyQueue: queue, replyQueueArguments: arguments, logger: logger)
        let router = ResultRouter(limits: resultCache, logger: logger)
        let client = TaskClient(
            replyQueue: queue, link: link, router: router, routes: routes, reconnect: reconnect, logger: logger)
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

    /// Routes results to their waiters until the session's connection is lost, then makes a new session (which
    /// starts its own receiver); ends when the client is closed.
    private func receiveResults(_ consumer: Consumer, session: ClientSession) async {
        do {
            for try await delivery in consumer {
                do {
                    let result = try ResultMessage.decode(body: delivery.body)
                    await router.deliver(result, redelivered: delivery.redelivered)
                } catch {
                    logger.warning("ignored a message on the reply queue that is not a result: \(error)")
                }
                // Without waiting for the write: the broker confirms a persistent result to its worker as soon as
                // it is acked, instead of after its disk write, so the sooner the ack leaves, the sooner the worker
                // takes its next task. A lost ack only means the result comes again (and is dropped as a copy).
                delivery.sendAck()
            }
            if await link.isClosed {
                await router.failAll(TaskClientError.clientClosed("result"))
                return
            }
            await link.lost(session, because: AMQPError(.closed, operation: "basic.consume", message: "the connection closed"))
        } catch {
            if await link.isClosed {
                await router.failAll(TaskClientError.clientClosed("result"))
                return
            }
            if (error as? AMQPError)?.kind == .consumerCancelledByServer {
                logger.error("the broker cancelled the result consumer on \(replyQueue): \(error); consuming again")
            }
            await link.lost(session, because: error)
        }
        await reconnectForResults()
    }

    /// Keeps trying to connect until a session (whose handler starts a new receiver) exists or the client closes.
    private func reconnectForResults() async {
        while await !link.isClosed, !Task.isCancelled {
            do {
                _ = try await link.session()
                return
            } catch {
                let pause = await link.backoff(reconnect)
                logger.warning("cannot reach the broker to receive results: \(error); retrying in \(String(format: "%.1f", pause.inSeconds)) s")
                try? await Task.sleep(for: pause)
            }
        }
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

    /// Builds the task message for `name` with `options`, as Celery's `apply_async` does.
    public func message(
        _ name: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:], options: SendOptions = SendOptions()
    ) -> TaskMessage {
        var message = TaskMessage(id: options.taskId ?? UUID().uuidString.lowercased(), name: name, args: args, kwargs: kwargs)
        message.rootId = options.rootId ?? message.id
        message.parentId = options.parentId
        let now = Date()
        if let countdown = options.countdown {
            message.eta = CeleryTime.format(now.addingTimeInterval(countdown.inSeconds))
        } else if let eta = options.eta {
            message.eta = CeleryTime.format(eta)
        }
        if let expiresIn = options.expiresIn {
            message.expires = CeleryTime.format(now.addingTimeInterval(expiresIn.inSeconds))
            message.expiration = String(Int(min(max(0, expiresIn.inSeconds * 1000), 1e15)))
        }
        message.priority = options.priority ?? 0
        message.ignoreResult = options.ignoreResult
        message.timeLimit = options.timeLimit
        if !options.link.isEmpty { message.embed.callbacks = options.link.map(\.json) }
        if !options.linkError.isEmpty { message.embed.errbacks = options.linkError.map(\.json) }
        for (key, value) in options.headers { message.extraHeaders[key] = FieldValue(json: value) }
        message.replyTo = replyQueue
        return message
    }

    /// Sends a task by name; returns its id once the broker confirmed it.
    @discardableResult
    public func send(
        _ name: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:], options: SendOptions = SendOptions()
    ) async throws -> String {
        let message = message(name, args: args, kwargs: kwargs, options: options)
        try await send(message, options: options)
        return message.id
    }

    /// Sends typed arguments as the kwargs of task `A.taskName`.
    @discardableResult
    public func send<A: TaskArguments>(_ arguments: A, options: SendOptions = SendOptions()) async throws -> String {
        let encoded: JSONValue
        do {
            encoded = try JSONValue(encoding: arguments)
        } catch {
            throw TaskClientError(
                .badArguments, operation: "send \(A.taskName)",
                message: "the arguments do not encode to JSON (\(error)); nothing was sent")
        }
        guard case .object(let kwargs) = encoded else {
            throw TaskClientError(
                .badArguments, operation: "send \(A.taskName)",
                message: "the arguments encode to \(encoded.jsonString), not a JSON object of kwargs; make \(A.self) a struct with named fields")
        }
        return try await send(A.taskName, kwargs: kwargs, options: options)
    }

    /// Sends a prepared message (its `replyTo` decides where results go); returns once the broker confirmed it.
    /// Throws `TaskClientError`: `.notConfirmed` for refusals (unroutable, 404 for a missing exchange; `cause` says
    /// which), `.badArguments` for a message the protocol cannot carry, `.closed` once the client is closed, and
    /// `.timedOut` when the broker stayed out of reach, or kept refusing the message with `basic.nack` (a quorum
    /// queue electing a leader, a full queue with `x-overflow = reject-publish`), for the whole `sendRetryWindow`.
    public func send(_ message: TaskMessage, options: SendOptions = SendOptions()) async throws {
        // One retry loop for both: a batch of one is published and confirmed as a single publish is.
        _ = try await sendBatch([message], options: options)[0].get()
    }

    /// Sends many tasks with pipelined confirms; one result per message (the id, or why the broker did not take
    /// it). Messages whose connection was lost before their confirm are published again on the next connection, as
    /// `send` does. Throws `TaskClientError` (`.closed`, `.timedOut`) when the batch as a whole cannot go on.
    public func sendBatch(_ messages: [TaskMessage], options: SendOptions = SendOptions()) async throws
        -> [Result<String, TaskClientError>]
    {
        let outgoing = messages.map { self.outgoing($0, options: options) }
        // Before publishing: a result can arrive before the confirm does.
        await router.expect(messages.filter { $0.replyTo == replyQueue && $0.ignoreResult != true }.map(\.id))
        var results = messages.map { Result<String, TaskClientError>.success($0.id) }
        var pending = Array(messages.indices)
        let deadline = ContinuousClock.now + reconnect.sendRetryWindow
        var attempts = 0
        while !pending.isEmpty {
            attempts += 1
            var session: ClientSession?
            var lostError: Error?
            do {
                session = try await link.session()
                let confirms = try await session!.publisher.publish(batch: pending.map { outgoing[$0] })
                var stillPending: [Int] = []
                for (index, confirm) in zip(pending, confirms) {
                    switch confirm {
                    case .success: if attempts > 1 { republished.add(1) }
                    case .failure(let error) where error.isConnectionLoss || error.isRefusalWorthRetrying:
                        stillPending.append(index)
                        lostError = error
                    case .failure(let error):
                        results[index] = .failure(.refused(messages[index].id, attempts: attempts, cause: error))
                        if error.isChannelLevel, let session { await link.channelLost(session) }
                    }
                }
                pending = stillPending
            } catch let error where error.isConnectionLoss {
                lostError = error
            } catch let error as AMQPError where error.isChannelLevel {
                if let session { await link.channelLost(session) }
                for index in pending {
                    results[index] = .failure(.refused(messages[index].id, attempts: attempts, cause: error))
                }
                pending = []
            } catch let error as AMQPError where error.kind == .invalidArgument {
                for index in pending {
                    results[index] = .failure(.refused(messages[index].id, attempts: attempts, cause: error))
                }
                pending = []
            }
            guard let lostError, !pending.isEmpty else { continue }
            guard await !link.isClosed else {
                throw TaskClientError(
                    .closed, operation: "send", taskId: messages[pending[0]].id,
                    message: "the task client was closed before the broker confirmed task \(messages[pending[0]].id); it may or may not have arrived",
                    attempts: attempts, cause: lostError as? AMQPError)
            }
            if let session, lostError.isConnectionLoss { await link.lost(session, because: lostError) }
            guard ContinuousClock.now < deadline else {
                throw TaskClientError.sendWindowExhausted(
                    messages[pending[0]].id, attempts: attempts, window: reconnect.sendRetryWindow, lastError: lostError)
            }
            try await Task.sleep(for: await link.backoff(reconnect))
        }
        return results
    }

    /// The message to publish: to `options`' exchange or queue if given, else where the routes send it.
    func outgoing(_ message: TaskMessage, options: SendOptions) -> OutgoingMessage {
        let (properties, body) = message.encode()
        let (exchange, routingKey): (String, String)
        if let explicit = options.exchange {
            (exchange, routingKey) = (explicit, options.routingKey ?? options.queue ?? message.name)
        } else if let queue = options.queue {
            (exchange, routingKey) = ("", queue)
        } else {
            (exchange, routingKey) = routes.target(for: message.name).exchangeAndRoutingKey
        }
        return OutgoingMessage(
            body: body, exchange: exchange, routingKey: routingKey, properties: properties, mandatory: true)
    }

    /// Waits for the final state (SUCCESS, FAILURE or REVOKED) of a task this client sent. Throws
    /// `TaskClientError.timedOut` when none came within `timeout`, `.closed` when the client closes meanwhile.
    public func result(for taskId: String, timeout: Duration = .seconds(60)) async throws -> ResultMessage {
        try await router.final(for: taskId, timeout: timeout).final
    }

    /// Every state message of a task so far and until it is final (STARTED, RETRY, …, SUCCESS).
    public func states(for taskId: String, timeout: Duration = .seconds(60)) async throws -> [ResultMessage] {
        try await router.final(for: taskId, timeout: timeout, keep: true).history
    }

    /// The result value of a task; throws its `TaskFailure` if it failed (or was revoked), and `TaskClientError` as
    /// `result(for:timeout:)` does.
    public func value(for taskId: String, timeout: Duration = .seconds(60)) async throws -> JSONValue {
        let result = try await result(for: taskId, timeout: timeout)
        switch result.status {
        case .success: return result.result
        case .revoked: throw TaskFailure(type: "TaskRevokedError", message: "task \(taskId) was revoked", module: "celery.exceptions")
        default: throw result.failure ?? TaskFailure(type: "Exception", message: result.result.jsonString)
        }
    }

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

import AMQP
import FoundationEssentials
import Tracing

/// Sending: building Celery task messages, publishing them with confirms, and publishing again what a lost
/// connection left unconfirmed.
extension TaskClient {
    /// Builds the task message for `name` with `options`, as Celery's `apply_async` does.
    public func message(
        _ name: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:], options: SendOptions = SendOptions()
    ) -> TaskMessage {
        var message = TaskMessage(id: options.taskId ?? UUID.random().lowercasedString, name: name, args: args, kwargs: kwargs)
        message.rootId = options.rootId ?? message.id
        message.parentId = options.parentId
        let now = Date()
        if let countdown = options.countdown {
            message.eta = CeleryTime.format(now.addingTimeInterval(countdown.secondsValue))
        } else if let eta = options.eta {
            message.eta = CeleryTime.format(eta)
        }
        if let expiresIn = options.expiresIn {
            message.expires = CeleryTime.format(now.addingTimeInterval(expiresIn.secondsValue))
            message.expiration = String(Int(min(max(0, expiresIn.secondsValue * 1000), 1e15)))
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
        if options.countdown == nil, let eta = options.eta, !eta.timeIntervalSince1970.isFinite {
            throw TaskClientError(
                .badArguments, operation: "send \(name)", message: "the eta is not a time (\(eta.timeIntervalSince1970) s since 1970); nothing was sent")
        }
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
        var results = messages.map { Result<String, TaskClientError>.success($0.id) }
        var outgoing: [OutgoingMessage] = []
        var destinations: [DelayedDestination?] = []
        // One span per message, ended once its fate is known: an error unless the broker confirmed it.
        var spans: [any Span] = []
        var finished = false
        defer {
            for (span, result) in zip(spans, results) {
                if !finished {
                    span.setStatus(SpanStatus(code: .error, message: "the send did not complete"))
                } else if case .failure(let error) = result {
                    span.recordError(error)
                    span.setStatus(SpanStatus(code: .error, message: "\(error)"))
                }
                span.end()
            }
        }
        let now = Date()
        for (index, message) in messages.enumerated() {
            var message = message
            let name = message.name
            spans.append(
                tracing.startPublish(
                    of: &message, to: destination(of: name, options: options).routingKey,
                    parent: ServiceContext.current ?? .topLevel))
            let plain = self.outgoing(message, options: options)
            switch Self.delayed(plain, of: message, now: now) {
            case .success(let (published, destination)):
                outgoing.append(published)
                destinations.append(destination)
            case .failure(let error):
                results[index] = .failure(error)
                outgoing.append(plain)
                destinations.append(nil)
            }
        }
        var pending = messages.indices.filter { (try? results[$0].get()) != nil }
        // Before publishing: a result can arrive before the confirm does. No hop onto the router when no result is
        // awaited (`ignoreResult`, another reply queue).
        let awaited = pending.map { messages[$0] }.filter { $0.replyTo == replyQueue && $0.ignoreResult != true }.map(\.id)
        if !awaited.isEmpty { await router.expect(awaited) }
        let deadline = ContinuousClock.now + reconnect.sendRetryWindow
        var attempts = 0
        while !pending.isEmpty {
            attempts += 1
            var session: ClientSession?
            var lostError: Error?
            do {
                if let ready = link.readySession { session = ready } else { session = try await link.session() }
                let delayedTo = Set(pending.compactMap { destinations[$0] })
                if !delayedTo.isEmpty {
                    let refused = try await prepareDelayedDelivery(delayedTo, on: session!)
                    for index in pending {
                        guard let destination = destinations[index], let error = refused[destination] else { continue }
                        results[index] = .failure(
                            TaskClientError(
                                error.code, operation: "send", taskId: messages[index].id,
                                message: "task \(messages[index].id): \(error.message)", attempts: attempts,
                                cause: error.cause))
                    }
                    pending = pending.filter { destinations[$0].map { refused[$0] == nil } ?? true }
                    if pending.isEmpty { continue }
                }
                let publishedAt = ContinuousClock.now
                var confirms = try await session!.publisher.publish(batch: pending.map { outgoing[$0] })
                var publishedAlone = Set<Int>()
                for (position, index) in pending.enumerated() {
                    guard case .failure(let error) = confirms[position], error.isChannelLevel, let session else { continue }
                    // The broker closed the shared channel: for this message, or for another sender's (a 404 on its
                    // exchange) published before this one, which the broker then dropped. Alone on a channel of its
                    // own, a refusal is its own.
                    await link.channelLost(session)
                    confirms[position] = await publishAlone(outgoing[index], on: session.connection)
                    publishedAlone.insert(index)
                }
                let confirmed = confirms.filter { if case .success = $0 { true } else { false } }.count
                let refused = confirms.filter {
                    if case .failure(let error) = $0 { !(error.isConnectionLoss || error.isRefusalWorthRetrying) } else { false }
                }.count
                metrics.published(confirmed: confirmed, refused: refused, latency: ContinuousClock.now - publishedAt)
                var stillPending: [Int] = []
                for (index, confirm) in zip(pending, confirms) {
                    switch confirm {
                    case .success:
                        // Published again: the broker may have taken the first copy before it closed the channel.
                        if attempts > 1 || publishedAlone.contains(index) {
                            republished.add(1)
                            metrics.republished()
                        }
                    case .failure(let error) where error.isConnectionLoss || error.isRefusalWorthRetrying:
                        stillPending.append(index)
                        lostError = error
                    case .failure(let error):
                        results[index] = .failure(.refused(messages[index].id, attempts: attempts, cause: error))
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
            if let session, lostError.isConnectionLoss { await link.publishFailed(session, because: lostError) }
            guard ContinuousClock.now < deadline else {
                throw TaskClientError.sendWindowExhausted(
                    messages[pending[0]].id, attempts: attempts, window: reconnect.sendRetryWindow, lastError: lostError)
            }
            try await Task.sleep(for: await link.backoff(reconnect))
        }
        finished = true
        return results
    }

    /// Publishes `message` on a confirm channel of its own, closed after: what the broker says there is about this
    /// message alone. A failure to open the channel is returned as the message's (a lost connection: published
    /// again; anything else: refused).
    func publishAlone(_ message: OutgoingMessage, on connection: Connection) async -> Result<Void, AMQPError> {
        do {
            let channel = try await connection.openChannel()
            defer { if channel.isOpen { Task { try? await channel.close() } } }
            try await channel.confirmSelect()
            return try await channel.publish(batch: [message])[0]
        } catch let error as AMQPError {
            return .failure(error)
        } catch {
            return .failure(AMQPError(.closed, operation: "basic.publish", message: "\(error)"))
        }
    }

    /// The message to publish: to `options`' exchange or queue if given, else where the routes send it.
    func outgoing(_ message: TaskMessage, options: SendOptions) -> OutgoingMessage {
        var (properties, body) = message.encode()
        // When it was published (AMQP `timestamp`, whole seconds): the worker's queue-wait histogram reads it.
        properties.timestamp = properties.timestamp ?? Date()
        let (exchange, routingKey) = destination(of: message.name, options: options)
        return OutgoingMessage(
            body: body, exchange: exchange, routingKey: routingKey, properties: properties, mandatory: true)
    }

    /// Where task `name` is published: to `options`' exchange or queue if given, else where the routes send it.
    func destination(of name: String, options: SendOptions) -> (exchange: String, routingKey: String) {
        if let explicit = options.exchange {
            return (explicit, options.routingKey ?? options.queue ?? name)
        } else if let queue = options.queue {
            return ("", queue)
        } else {
            return routes.target(for: name).exchangeAndRoutingKey
        }
    }
}

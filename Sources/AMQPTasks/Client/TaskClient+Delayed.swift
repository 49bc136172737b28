import AMQP
import FoundationEssentials
import Logging

/// Delayed tasks (`countdown`, `eta`): published through the delay levels of `NativeDelayedDelivery`, as a Celery
/// 5.5+ client does, after binding the queues the task is going to.
extension TaskClient {
    /// Where a delayed task goes once due: the exchange and routing key it would have had without a delay.
    struct DelayedDestination: Hashable, Sendable {
        var exchange: String
        var routingKey: String
    }

    /// `outgoing` as published at `now`: unchanged when the task has no `eta`, an `eta` that has passed, or one at
    /// most `TaskMessage.etaHoldLimit` ahead (the worker waits that out); else to `celery_delayed_27` with the delay
    /// (whole seconds, rounded up so it never arrives early) in its routing key, and the destination to bind.
    /// A garbage `eta`, a delay over 2^28 − 1 s and a routing key too long to carry the delay are `.badArguments`.
    static func delayed(_ outgoing: OutgoingMessage, of message: TaskMessage, now: Date)
        -> Result<(OutgoingMessage, DelayedDestination?), TaskClientError>
    {
        guard let eta = message.eta else { return .success((outgoing, nil)) }
        func refuse(_ text: String) -> Result<(OutgoingMessage, DelayedDestination?), TaskClientError> {
            .failure(TaskClientError(.badArguments, operation: "send", taskId: message.id, message: text + "; nothing was sent"))
        }
        guard let date = message.etaDate else {
            return refuse(
                "the eta '\(eta.prefix(80))' of task \(message.id) is not an ISO 8601 time such as 2026-11-25T15:22:28.144239+00:00")
        }
        let remaining = date.timeIntervalSince(now)
        guard remaining > TaskMessage.etaHoldLimit.secondsValue else { return .success((outgoing, nil)) }
        guard remaining <= Double(NativeDelayedDelivery.longestDelaySeconds) else {
            return refuse(
                "task \(message.id) is due in \(Int(remaining)) s, beyond the longest delay of \(NativeDelayedDelivery.longestDelaySeconds) s (2^28 − 1 s, about 8.5 years) that RabbitMQ's delay levels can hold")
        }
        let key = NativeDelayedDelivery.strippingDelayPrefix(outgoing.routingKey)
        guard key.utf8.count <= NativeDelayedDelivery.longestKey else {
            return refuse(
                "the routing key of delayed task \(message.id) is \(key.utf8.count) bytes; with the 56 bytes of its delay it must fit AMQP's 255, so at most \(NativeDelayedDelivery.longestKey)")
        }
        var delayed = outgoing
        delayed.exchange = NativeDelayedDelivery.entryExchange
        delayed.routingKey = NativeDelayedDelivery.routingKey(
            delaySeconds: NativeDelayedDelivery.delaySeconds(for: .clampedSeconds(remaining)), key: key)
        delayed.mandatory = true
        return .success((delayed, DelayedDestination(exchange: outgoing.exchange, routingKey: key)))
    }

    /// The queues the routes know a destination leads to: the queue itself for the default exchange, else the
    /// configured queues bound to the exchange (with that key, for a direct exchange). Empty when the client's
    /// configuration does not describe the exchange: then only the workers' bindings route the task when due.
    func knownQueues(for destination: DelayedDestination) -> [String] {
        if destination.exchange.isEmpty { return [destination.routingKey] }
        let type = routes.exchanges.first { $0.name == destination.exchange }?.type
        return routes.queues.filter { queue in
            queue.bindings.contains {
                $0.exchange == destination.exchange && (type != .direct || $0.routingKey == destination.routingKey)
            }
        }.map(\.name)
    }

    /// Declares the delay levels (once per connection) and binds the known queues of each destination as a worker
    /// would (each once per connection), so a delayed task does not reach `celery_delayed_delivery` to find no
    /// binding (RabbitMQ would keep it in a level, see README "Delayed tasks"). A user that may not declare or bind
    /// (403) relies on the workers' declarations. Returns the destinations whose tasks must not be sent, with why:
    /// none of their known queues exists, or the broker refused the levels. Throws connection losses (the send
    /// retries).
    func prepareDelayedDelivery(_ destinations: Set<DelayedDestination>, on session: ClientSession) async throws
        -> [DelayedDestination: TaskClientError]
    {
        var refused: [DelayedDestination: TaskClientError] = [:]
        if !session.delayed.levelsDeclared {
            do {
                try await NativeDelayedDelivery.declare(on: session.connection, logger: logger)
                session.delayed.markLevelsDeclared()
            } catch let error as AMQPError where error.replyCode == .accessRefused {
                // A user allowed to publish but not to declare: the workers declare the levels.
                logger.warning("this user may not declare the delay levels; relying on the workers': \(error)")
                session.delayed.markLevelsDeclared()
            } catch let error where !error.isConnectionLoss {
                for destination in destinations {
                    refused[destination] = TaskClientError(
                        .notConfirmed, operation: "send",
                        message: "the delay levels (celery_delayed_0…27) could not be declared: \(error)",
                        cause: error as? AMQPError)
                }
                return refused
            }
        }
        let exchangeTypes = DelayedDeliveryBindings.exchangeTypes(of: routes.exchanges)
        for destination in destinations {
            let queues = knownQueues(for: destination)
            var missing: [String] = []
            var lastError: AMQPError?
            for queue in queues where !session.delayed.isBound(queue) {
                let channel = try await session.connection.openChannel()
                do {
                    try await DelayedDeliveryBindings(
                        queue: queue, definition: routes.queues.first { $0.name == queue }, exchangeTypes: exchangeTypes
                    ).declare(on: channel)
                    session.delayed.markBound(queue)
                    try? await channel.close()
                } catch let error as AMQPError where error.replyCode == .accessRefused {
                    // A user allowed to publish but not to bind: the queue's workers bind it.
                    logger.warning("this user may not bind \(queue) for delayed tasks; relying on its workers: \(error)")
                    session.delayed.markBound(queue)
                } catch let error as AMQPError where error.replyCode == .notFound && error.message.contains("no queue") {
                    missing.append(queue)
                    lastError = error
                } catch let error as AMQPError where error.isChannelLevel {
                    // Anything else (a node that is down, a broker still starting) is no reason to refuse the task:
                    // its workers bind the queue too. Tried again on the next delayed task.
                    logger.warning("could not bind \(queue) for delayed tasks now; relying on its workers: \(error)")
                }
            }
            // A fanout exchange ignores keys, but the levels route by them: bind the exchange itself for exactly
            // this key, so the task reaches every queue of the exchange whatever key it carries.
            let exchangeType = exchangeTypes[destination.exchange] ?? DelayedDeliveryBindings.builtInTypes[destination.exchange]
            let fanoutBinding = "fanout \(destination.exchange) \(destination.routingKey)"
            if exchangeType == .fanout, !session.delayed.isBound(fanoutBinding) {
                let channel = try await session.connection.openChannel()
                do {
                    try await channel.bindExchange(
                        destination.exchange, to: NativeDelayedDelivery.deliveryExchange,
                        routingKey: DelayedDeliveryBindings.exactPattern(for: destination.routingKey))
                    session.delayed.markBound(fanoutBinding)
                    try? await channel.close()
                } catch let error as AMQPError where error.isChannelLevel {
                    logger.warning("could not bind the fanout exchange \(destination.exchange) for delayed tasks: \(error)")
                }
            }
            if !queues.isEmpty, missing.count == queues.count, let lastError {
                refused[destination] = TaskClientError(
                    .notConfirmed, operation: "send",
                    message: "the delayed task's queue \(missing.joined(separator: ", ")) could not be bound to \(NativeDelayedDelivery.deliveryExchange) (\(lastError.replyCode == .notFound ? "it does not exist: declare it (amqp-task declare) or start its worker" : "refused")); nothing was sent",
                    cause: lastError)
            }
        }
        return refused
    }
}

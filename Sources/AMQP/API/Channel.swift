import FoundationEssentials

/// An AMQP channel: declares topology, publishes, consumes and settles deliveries.
///
/// A broker error on a channel (404 NOT_FOUND, 406 PRECONDITION_FAILED, 403 ACCESS_REFUSED…) closes only that
/// channel, as AMQP prescribes: the call throws an `AMQPError` with `kind == .channelClosedByServer` and the reply
/// code, later calls on this channel throw `.closed`, and `connection.openChannel()` gives a fresh one.
public final class Channel: Sendable {
    /// The connection this channel belongs to; the channel keeps it open.
    public let connection: Connection
    /// The channel number on the connection.
    public let id: UInt16

    var core: ConnectionCore { connection.core }
    private let open: ChannelOpenFlag

    init(connection: Connection, id: UInt16, open: ChannelOpenFlag) {
        self.connection = connection
        self.id = id
        self.open = open
    }

    /// True until the channel is closed, by `close()` or by the broker (an error on it), or its connection is lost.
    /// A channel that is not open throws `.closed` from every call: open a new one.
    public var isOpen: Bool { open.isOpen }

    // MARK: Exchanges

    /// Declares an exchange (`exchange.declare`); idempotent when it exists with the same properties,
    /// 406 PRECONDITION_FAILED when it exists with others.
    public func declareExchange(
        _ name: String, type: ExchangeType = .direct, durable: Bool = true, autoDelete: Bool = false,
        isInternal: Bool = false, arguments: FieldTable = [:]
    ) async throws {
        let id = id
        try await perform("exchange.declare") {
            try $0.exchangeDeclare(
                channel: id, name: name, type: type.rawValue, passive: false, durable: durable,
                autoDelete: autoDelete, isInternal: isInternal, arguments: arguments)
        }
    }

    /// Checks that an exchange exists (passive declare); 404 NOT_FOUND (closing the channel) when it does not.
    public func checkExchange(_ name: String) async throws {
        let id = id
        try await perform("exchange.declare") {
            try $0.exchangeDeclare(
                channel: id, name: name, type: "", passive: true, durable: false, autoDelete: false, isInternal: false,
                arguments: [:])
        }
    }

    /// Deletes an exchange (`exchange.delete`).
    public func deleteExchange(_ name: String, ifUnused: Bool = false) async throws {
        let id = id
        try await perform("exchange.delete") { try $0.exchangeDelete(channel: id, name: name, ifUnused: ifUnused) }
    }

    /// Binds exchange `destination` to exchange `source` (`exchange.bind`, a RabbitMQ extension): what `source`
    /// routes with a matching key goes on to `destination`, which routes it again by its own bindings.
    public func bindExchange(
        _ destination: String, to source: String, routingKey: String = "", arguments: FieldTable = [:]
    ) async throws {
        let id = id
        try await perform("exchange.bind") {
            try $0.exchangeBind(
                channel: id, destination: destination, source: source, routingKey: routingKey, arguments: arguments)
        }
    }

    // MARK: Queues

    /// Declares a queue (`queue.declare`). An empty name asks the broker to name it. Arguments such as
    /// `x-queue-type: "quorum"`, `x-dead-letter-exchange`, `x-max-priority`, `x-message-ttl` go in `arguments`.
    @discardableResult
    public func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: FieldTable = [:]
    ) async throws -> QueueState {
        let id = id
        return try await perform("queue.declare") {
            try $0.queueDeclare(
                channel: id, name: name, passive: false, durable: durable, exclusive: exclusive,
                autoDelete: autoDelete, arguments: arguments)
        }
    }

    /// Reads a queue's message and consumer counts (passive declare); 404 NOT_FOUND (closing the channel)
    /// when it does not exist.
    public func inspectQueue(_ name: String) async throws -> QueueState {
        let id = id
        return try await perform("queue.declare") {
            try $0.queueDeclare(
                channel: id, name: name, passive: true, durable: false, exclusive: false, autoDelete: false,
                arguments: [:])
        }
    }

    /// Binds a queue to an exchange (`queue.bind`).
    public func bindQueue(
        _ queue: String, to exchange: String, routingKey: String = "", arguments: FieldTable = [:]
    ) async throws {
        let id = id
        try await perform("queue.bind") {
            try $0.queueBind(
                channel: id, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments,
                unbind: false)
        }
    }

    /// Removes a binding (`queue.unbind`).
    public func unbindQueue(
        _ queue: String, from exchange: String, routingKey: String = "", arguments: FieldTable = [:]
    ) async throws {
        let id = id
        try await perform("queue.unbind") {
            try $0.queueBind(
                channel: id, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments,
                unbind: true)
        }
    }

    /// Removes all ready messages from a queue (`queue.purge`); returns how many.
    @discardableResult
    public func purgeQueue(_ name: String) async throws -> UInt32 {
        let id = id
        return try await perform("queue.purge") { try $0.queuePurge(channel: id, name: name) }
    }

    /// Deletes a queue (`queue.delete`); returns how many messages it held.
    @discardableResult
    public func deleteQueue(_ name: String, ifUnused: Bool = false, ifEmpty: Bool = false) async throws -> UInt32 {
        let id = id
        return try await perform("queue.delete") {
            try $0.queueDelete(channel: id, name: name, ifUnused: ifUnused, ifEmpty: ifEmpty)
        }
    }

    // MARK: Publishing

    /// Turns on publisher confirms (`confirm.select`): from now on `publish` returns only once the broker has
    /// taken responsibility for the message (written it to disk, for persistent messages on durable queues).
    public func confirmSelect() async throws {
        let id = id
        try await perform("confirm.select") { try $0.confirmSelect(channel: id) }
    }

    /// Publishes one message. On a confirm channel, returns when the broker confirmed it, and throws `.nacked`
    /// or (for `mandatory` messages no queue took) `.unroutable`. Many tasks may publish on one channel at once:
    /// their confirms are then pipelined.
    public func publish(_ message: OutgoingMessage) async throws {
        let id = id
        try await performDeferred("basic.publish") { core, done in
            core.publish(channel: id, message, completion: done)
        }
    }

    /// Publishes `body` to `exchange` with `routingKey`; see `publish(_:)`.
    public func publish(
        _ body: Data, exchange: String = "", routingKey: String, properties: BasicProperties = BasicProperties(),
        mandatory: Bool = false
    ) async throws {
        try await publish(
            OutgoingMessage(
                body: body, exchange: exchange, routingKey: routingKey, properties: properties, mandatory: mandatory))
    }

    /// Publishes many messages with one hand-over to the I/O thread and waits for all their confirms
    /// (pipelined). Returns one result per message, in order: nothing is reported as sent unless confirmed.
    public func publish(batch messages: [OutgoingMessage]) async throws -> [Result<Void, AMQPError>] {
        guard !messages.isEmpty else { return [] }
        let id = id
        return try await performDeferred("basic.publish") { core, done in
            let collector = BatchCollector(count: messages.count, done: done)
            for (index, message) in messages.enumerated() {
                core.publish(channel: id, message) { collector.record($0, at: index) }
            }
        }
    }

    // MARK: Consuming

    /// Sets how many unacknowledged deliveries the broker may hand this channel's consumers
    /// (`basic.qos`, per consumer unless `global`). Prefetch 1 gives each consumer one message at a time.
    public func setPrefetch(_ count: UInt16, global: Bool = false) async throws {
        let id = id
        try await perform("basic.qos") { try $0.basicQos(channel: id, prefetchCount: count, global: global) }
    }

    /// Starts a consumer with manual acknowledgements (`basic.consume`, `no_ack = false`).
    /// On a connection opened with a small `frame_max`, set `ConnectionConfiguration.consumes` (`.consuming`):
    /// a delivery whose properties and headers are larger than the connection's frame size drops the connection.
    public func consume(
        queue: String, consumerTag: String = "", exclusive: Bool = false, arguments: FieldTable = [:]
    ) async throws -> Consumer {
        let id = id
        let (stream, continuation) = AsyncThrowingStream<Delivery, Error>.makeStream()
        let channelOpen = ChannelOpenFlag()
        let tag = try await perform("basic.consume") {
            try $0.basicConsume(
                channel: id, queue: queue, tag: consumerTag, exclusive: exclusive, arguments: arguments,
                continuation: continuation, channelOpen: channelOpen)
        }
        return Consumer(tag: tag, channel: self, stream: stream, channelOpen: channelOpen)
    }

    /// Cancels a consumer (`basic.cancel`).
    public func cancel(consumerTag: String) async throws {
        let id = id
        try await perform("basic.cancel") { try $0.basicCancel(channel: id, tag: consumerTag) }
    }

    /// Takes one message from a queue (`basic.get`), or nil when it is empty. With `autoAck` false, settle it.
    /// As for `consume`, a connection that reads messages should be opened with `consumes` set.
    public func get(queue: String, autoAck: Bool = false) async throws -> Delivery? {
        let id = id
        return try await perform("basic.get") { try $0.basicGet(channel: id, queue: queue, autoAck: autoAck) }
    }

    /// Acknowledges `deliveryTag`, and with `multiple` every earlier delivery on this channel.
    public func ack(deliveryTag: UInt64, multiple: Bool = false) async throws {
        let id = id
        try await perform("basic.ack") {
            try $0.settle(channel: id, deliveryTag: deliveryTag, .ack(multiple: multiple))
        }
    }

    /// Negatively acknowledges `deliveryTag` (and earlier ones with `multiple`).
    public func nack(deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) async throws {
        let id = id
        try await perform("basic.nack") {
            try $0.settle(channel: id, deliveryTag: deliveryTag, .nack(multiple: multiple, requeue: requeue))
        }
    }

    // MARK: Closing

    /// Closes the channel (`channel.close`). Unacked deliveries go back to their queues. A channel closed already
    /// (by the broker, or by an earlier `close()`) stays closed, and the newer channel that may have its number now is
    /// left alone.
    public func close() async throws {
        let (id, open) = (id, open)
        try await perform("channel.close") { core in
            guard core.isCurrent(id, open) else { return }
            try core.closeChannel(id)
        }
    }
}

extension Channel {
    /// Runs `body` on the I/O thread, or throws `.closed` when this channel is closed: the broker frees the number of
    /// a channel it closes and a newer channel may have it, which no call on this one may touch.
    func perform<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (ConnectionCore) throws -> T
    ) async throws -> T {
        let (id, open) = (id, open)
        return try await core.perform(operation) { core in
            try core.requireCurrent(id, open, operation: operation)
            return try body(core)
        }
    }

    /// `perform` for a call that completes later (a publish waiting for its confirm).
    func performDeferred<T: Sendable>(
        _ operation: String,
        _ body: @escaping @Sendable (ConnectionCore, @escaping @Sendable (Result<T, AMQPError>) -> Void) -> Void
    ) async throws -> T {
        let (id, open) = (id, open)
        return try await core.performDeferred(operation) { core, done in
            guard core.isCurrent(id, open) else { return done(.failure(core.closedChannelError(id, operation: operation))) }
            body(core, done)
        }
    }
}

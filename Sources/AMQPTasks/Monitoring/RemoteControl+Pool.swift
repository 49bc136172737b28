import AMQP
import FoundationEssentials
import Logging

/// Celery's commands that reshape a worker (`full` only): `pool_grow`, `pool_shrink`, `autoscale`, `add_consumer`,
/// `cancel_consumer`, answered with Celery 5.7's words (`celery/worker/control.py`). A worker's "pool" is its
/// consumer slots, `concurrency` per queue (`ConsumerSlots`): growing adds N slots to every queue, shrinking retires
/// N from every queue, each after the task it runs. An argument that cannot be used gets an `{"error": …}` reply and
/// changes nothing.
extension RemoteControl {
    /// The request keys `add_consumer` understands: Celery's arguments and the `kombu.Queue.from_dict` options a
    /// worker can honour.
    static let addConsumerKeys: Set<String> = [
        "queue", "exchange", "exchange_type", "routing_key", "binding_key", "durable", "auto_delete",
        "queue_durable", "queue_auto_delete", "exchange_durable", "exchange_auto_delete", "queue_arguments",
    ]

    /// `pool_grow [N=1]`: N more consumer slots per queue, up to `[worker] max_concurrency` and to the channels the
    /// connection has.
    func poolGrow(_ arguments: [String: JSONValue]) async -> JSONValue { await resizePool(by: .grow, arguments) }

    /// `pool_shrink [N=1]`: N fewer consumer slots per queue, at least one left; each retiring slot finishes its
    /// task first.
    func poolShrink(_ arguments: [String: JSONValue]) async -> JSONValue { await resizePool(by: .shrink, arguments) }

    /// Which way `pool_grow` and `pool_shrink` resize, with their words.
    enum PoolResize {
        case grow, shrink

        var command: String { self == .grow ? "pool_grow" : "pool_shrink" }
    }

    /// `pool_grow` and `pool_shrink`: N (the request's `n`, 1 by default) slots per queue more or fewer, refused
    /// with autoscale on, past `max_concurrency` or below one slot; growing adds only the slots the connection has
    /// channels for, and says so when that is fewer than asked.
    private func resizePool(by direction: PoolResize, _ arguments: [String: JSONValue]) async -> JSONValue {
        let command = direction.command
        if slots.shape.autoscale != nil {
            return Self.refusal("\(command) is not supported with autoscale. Adjust autoscale range instead.")
        }
        let n: Int
        do {
            n = try Self.count(arguments["n"], command, most: slots.maxConcurrency)
        } catch {
            return Self.refusal("\(error)")
        }
        let current = slots.shape.concurrency
        switch direction {
        case .grow:
            guard current + n <= slots.maxConcurrency else {
                return Self.refusal(
                    "pool_grow \(n) refused: \(configuration.hostname) has \(current) consumers per queue and may have at most \(slots.maxConcurrency) ([worker] max_concurrency)")
            }
            if let room = await channelRoom(), room.slotsPerQueue < n {
                // Each slot needs a channel of the connection: the ones beyond channel_max would only wait for one.
                let added = room.slotsPerQueue
                if added > 0 { await slots.resize(to: current + added) }
                logger.warning("pool_grow \(n): grown by \(added) consumers per queue only: \(room.reason)")
                return Self.refusal(
                    "pool_grow \(n): added \(added) consumer slot(s) per queue (\(added * slots.shape.queues.count) in all), not \(n): \(room.reason); connect with a higher channel_max (the broker URL's ?channel_max=, 0 lets the broker choose) or grow by fewer")
            }
            let now = await slots.resize(to: current + n)
            logger.notice("pool grown by remote control: \(now) consumers per queue (was \(current))")
            return ["ok": "pool will grow"]
        case .shrink:
            guard current - n >= 1 else {
                return Self.refusal(
                    "pool_shrink \(n) refused: \(configuration.hostname) has \(current) consumers per queue and keeps at least 1")
            }
            let now = await slots.resize(to: current - n)
            logger.notice("pool shrunk by remote control: \(now) consumers per queue (was \(current)); busy ones retire after their task")
            return ["ok": "pool will shrink"]
        }
    }

    /// Channels of the connection `pool_grow` leaves to the worker's short-lived ones (a remote-control reply
    /// channel opened again, `add_consumer`'s declarations, a queue re-declared after it was deleted).
    static let channelsKeptFree = 2

    /// How many more consumer slots per queue the connection has channels for (each slot consumes on its own
    /// channel), and why no more; nil when the connection cannot say (it is closing: the slots start with the next).
    private func channelRoom() async -> (slotsPerQueue: Int, reason: String)? {
        guard let usage = try? await connection.channelUsage() else { return nil }
        let waiting = slots.waitingForConsumer
        let free = max(0, usage.free - waiting - Self.channelsKeptFree)
        let queues = max(1, slots.shape.queues.count)
        return (
            free / queues,
            "each consumer needs a channel of its own, and the connection may have \(usage.limit) (channel_max): \(usage.open) are open, \(waiting) consumer(s) are about to open one and \(Self.channelsKeptFree) are kept for the worker's own use"
        )
    }

    /// `autoscale [MAX [MIN]]`: sets the autoscale range, turning autoscale on if it was off (a Celery worker needs
    /// `--autoscale` for that). Slots outside the new range are added or retired at once.
    func autoscale(_ arguments: [String: JSONValue]) async -> JSONValue {
        let range: AutoscaleRange
        do {
            let most = try Self.optionalCount(arguments["max"], "autoscale max", most: slots.maxConcurrency)
            let least = try Self.optionalCount(arguments["min"], "autoscale min", most: slots.maxConcurrency)
            let current = slots.shape.autoscale
            guard let max = most ?? current?.max else {
                return Self.refusal("Autoscale not enabled: give the maximum (celery control autoscale MAX [MIN]) to enable it")
            }
            range = try AutoscaleRange(max: max, min: least ?? current?.min ?? 1)
        } catch {
            return Self.refusal("\(error)")
        }
        slots.setAutoscale(range)
        let concurrency = slots.shape.concurrency
        if concurrency > range.max {
            await slots.resize(to: range.max)
        } else if concurrency < range.min {
            await slots.resize(to: range.min)
        }
        logger.notice("autoscale set by remote control: \(range.min) to \(range.max) consumers per queue")
        return ["ok": .string("autoscale now max=\(range.max) min=\(range.min)")]
    }

    /// `add_consumer QUEUE [EXCHANGE [TYPE [ROUTING_KEY]]]` and options: consume QUEUE with `concurrency` slots.
    /// With an exchange, the exchange, the queue and their binding are declared as Celery's worker declares them;
    /// without one, the queue must exist (or be in the configuration's topology). Its dead-letter queue and delay
    /// bindings are declared as for a configured queue. A refusal (404, 403, 406…) is the reply; the other
    /// consumers go on.
    func addConsumer(_ arguments: [String: JSONValue]) async -> JSONValue {
        let queue: String
        let declaration: QueueDeclaration?
        do {
            queue = try queueName(arguments["queue"], "add_consumer")
            let deadLetters = DeadLetters.name(for: queue)
            guard queue.utf8.count <= DeadLetters.longestQueueName else {
                // Declaring it, rabbitmq-c would write the frame half and drop the whole connection.
                throw RemoteControlArgumentError(
                    "add_consumer: a queue name is at most \(DeadLetters.longestQueueName) bytes, so that its dead-letter queue \(Self.clip(deadLetters)) fits AMQP's 255; got \(queue.utf8.count) bytes")
            }
            declaration = try Self.declaration(of: queue, arguments)
        } catch {
            return Self.refusal("\(error)")
        }
        guard !slots.shape.queues.contains(queue) else {
            logger.info("add_consumer \(queue): consuming it already")
            return ["ok": .string("add consumer \(queue)")]
        }
        do {
            try await prepareQueue(queue, declaration)
        } catch {
            logger.error("add_consumer \(Self.clip(queue)) failed: \(error)")
            return Self.refusal(
                "add_consumer \(Self.clip(queue)) failed: \(error); \(configuration.hostname) consumes as before: \(slots.shape.queues.joined(separator: ", "))")
        }
        guard slots.add(queue, declaration: declaration) else { return ["ok": .string("add consumer \(queue)")] }
        logger.notice("started consuming from \(queue) by remote control (\(slots.shape.concurrency) consumers)")
        return ["ok": .string("add consumer \(queue)")]
    }

    /// `cancel_consumer QUEUE`: stop consuming QUEUE; its slots retire after the task each runs. A worker keeps at
    /// least one queue.
    func cancelConsumer(_ arguments: [String: JSONValue]) async -> JSONValue {
        let queue: String
        do {
            queue = try queueName(arguments["queue"], "cancel_consumer")
            let unknown = Set(arguments.keys).subtracting(["queue"])
            if let key = unknown.sorted().first {
                throw RemoteControlArgumentError("cancel_consumer takes only queue, got \(Self.clip(key))")
            }
        } catch {
            return Self.refusal("\(error)")
        }
        let queues = slots.shape.queues
        if queues == [queue] {
            return Self.refusal(
                "cancel_consumer \(queue) refused: it is the only queue \(configuration.hostname) consumes; add another first (add_consumer) or shut the worker down")
        }
        if await slots.cancel(queue) {
            logger.notice("no longer consuming from \(queue) (remote control); its running tasks finish first")
        } else {
            logger.info("cancel_consumer \(Self.clip(queue)): not consuming it")
        }
        return ["ok": .string("no longer consuming from \(queue)")]
    }

    /// `active_queues`: what the worker consumes now, as kombu describes a queue.
    func activeQueues() -> JSONValue {
        let shape = slots.shape
        return .array(shape.queues.map { queue in
            let declared = shape.declarations[queue]
            return [
                "name": .string(queue),
                "exchange": [
                    "name": .string(declared?.exchange ?? ""), "type": .string(declared?.exchangeType ?? "direct"),
                    "durable": .bool(declared?.exchangeDurable ?? true),
                    "auto_delete": .bool(declared?.exchangeAutoDelete ?? false),
                ],
                "routing_key": .string(declared?.routingKey ?? queue),
                "durable": .bool(declared?.queueDurable ?? true), "exclusive": false,
                "auto_delete": .bool(declared?.queueAutoDelete ?? false), "no_ack": false,
                // The rest of kombu's Queue.as_dict(), which Flower's worker page reads.
                "alias": .null, "bindings": [], "binding_arguments": .null, "consumer_arguments": .null,
                "queue_arguments": declared.map { Self.json($0.queueArguments) } ?? .null,
                "expires": .null, "message_ttl": .null, "max_length": .null, "max_length_bytes": .null,
                "max_priority": .null,
            ]
        })
    }

    /// Queue arguments as JSON, for `active_queues` (what is not text or a number is shown as its description).
    private static func json(_ table: FieldTable) -> JSONValue {
        guard !table.entries.isEmpty else { return .null }
        return .object(Dictionary(table.entries.map { entry in
            let value: JSONValue
            switch entry.value {
            case .string(let text): value = .string(text)
            case .bool(let flag): value = .bool(flag)
            case .int8(let n): value = .int(Int(n))
            case .int16(let n): value = .int(Int(n))
            case .int32(let n): value = .int(Int(n))
            case .int64(let n): value = .int(Int(n))
            case .double(let n): value = .double(n)
            default: value = .string("\(entry.value)")
            }
            return (entry.key, value)
        }, uniquingKeysWith: { _, last in last }))
    }

    /// A queue name from a request: 1 to 255 bytes (AMQP's limit), not one of the worker's own queues.
    private func queueName(_ value: JSONValue?, _ command: String) throws -> String {
        guard let name = value?.stringValue else {
            throw RemoteControlArgumentError(
                "\(command) needs a queue name (celery control \(command) QUEUE), got \(Self.clip(value?.jsonString ?? "none"))")
        }
        guard (1...255).contains(name.utf8.count) else {
            throw RemoteControlArgumentError(
                "\(command): a queue name is 1 to 255 bytes, got \(name.utf8.count) bytes (\(Self.clip(name)))")
        }
        if name.hasSuffix(".celery.pidbox") || name.hasPrefix("celeryev.") || name == configuration.revokeLog {
            throw RemoteControlArgumentError(
                "\(command) \(Self.clip(name)) refused: it is a remote-control, event or revoke-log queue, not a task queue")
        }
        // Consuming these would run tasks another worker runs now (custody copies) or before they are due (delay
        // levels).
        if name.hasPrefix("amqp-tasks.") || name.hasPrefix("celery_delayed_") {
            throw RemoteControlArgumentError(
                "\(command) \(Self.clip(name)) refused: it is one of the queues amqp-tasks keeps for itself (custody copies, delayed tasks), not a task queue")
        }
        return name
    }

    /// How `add_consumer` declares `queue`: nil when the request names no exchange (the queue must exist).
    private static func declaration(of queue: String, _ arguments: [String: JSONValue]) throws -> QueueDeclaration? {
        if let unknown = Set(arguments.keys).subtracting(addConsumerKeys).sorted().first {
            throw RemoteControlArgumentError(
                "add_consumer: unknown option \(clip(unknown)); it takes \(addConsumerKeys.sorted().joined(separator: ", "))")
        }
        func text(_ key: String) throws -> String? {
            switch arguments[key] {
            case nil, .null?: return nil
            case .string(let value)?:
                guard value.utf8.count <= 255 else {
                    throw RemoteControlArgumentError("add_consumer: \(key) is at most 255 bytes, got \(value.utf8.count)")
                }
                return value
            case let other?: throw RemoteControlArgumentError("add_consumer: \(key) must be text, got \(clip(other.jsonString))")
            }
        }
        func flag(_ key: String) throws -> Bool? {
            switch arguments[key] {
            case nil, .null?: return nil
            case .bool(let value)?: return value
            case let other?: throw RemoteControlArgumentError("add_consumer: \(key) must be true or false, got \(clip(other.jsonString))")
            }
        }
        let exchangeType = try text("exchange_type") ?? "direct"
        guard QueueDeclaration.exchangeTypes.contains(exchangeType) else {
            throw RemoteControlArgumentError(
                "add_consumer: exchange_type must be one of \(QueueDeclaration.exchangeTypes.sorted().joined(separator: ", ")), got \(clip(exchangeType))")
        }
        let routingKey = try text("routing_key") ?? text("binding_key")
        var queueArguments: FieldTable = [:]
        switch arguments["queue_arguments"] {
        case nil, .null?: break
        case .object(let table)?:
            let size = JSONValue.object(table).jsonString.utf8.count
            guard size <= maxQueueArgumentsBytes else {
                // A queue.declare larger than a frame: rabbitmq-c would drop the whole connection.
                throw RemoteControlArgumentError(
                    "add_consumer: queue_arguments is at most \(maxQueueArgumentsBytes) bytes of JSON, got \(size)")
            }
            if let key = overlongKey(in: .object(table)) {
                // rabbitmq-c would write the frame half and drop the whole connection (every running task requeued).
                throw RemoteControlArgumentError(
                    "add_consumer: a queue_arguments name is at most 255 bytes (an AMQP short string), got \(key.utf8.count) bytes (\(clip(key)))")
            }
            queueArguments = FieldTable(table.sorted { $0.key < $1.key }.map { (key: $0.key, value: FieldValue(json: $0.value)) })
        case let other?: throw RemoteControlArgumentError("add_consumer: queue_arguments must be an object, got \(clip(other.jsonString))")
        }
        let durable = try flag("durable")
        let autoDelete = try flag("auto_delete")
        var declaration = QueueDeclaration(
            queue: queue, exchange: try text("exchange") ?? "", exchangeType: exchangeType,
            routingKey: routingKey ?? queue)
        declaration.queueDurable = try flag("queue_durable") ?? durable ?? true
        declaration.queueAutoDelete = try flag("queue_auto_delete") ?? autoDelete ?? false
        declaration.exchangeDurable = try flag("exchange_durable") ?? durable ?? true
        declaration.exchangeAutoDelete = try flag("exchange_auto_delete") ?? autoDelete ?? false
        declaration.queueArguments = queueArguments
        guard arguments["exchange"]?.stringValue != nil else {
            // Celery's tools always send exchange_type "direct"; anything else needs an exchange to mean something.
            let given = arguments.filter { !["queue", "exchange", "exchange_type"].contains($0.key) && $0.value != .null }
            if let key = given.keys.sorted().first {
                throw RemoteControlArgumentError(
                    "add_consumer: \(clip(key)) needs an exchange (celery control add_consumer QUEUE EXCHANGE [TYPE [ROUTING_KEY]]) for the worker to declare the queue")
            }
            return nil
        }
        return declaration
    }

    /// The most JSON `add_consumer`'s queue_arguments may take: far more than any queue's arguments, and its
    /// `queue.declare` stays well within one frame (frame_max is 128 KiB by default; a JSON byte encodes to at most
    /// a few in an AMQP table).
    static let maxQueueArgumentsBytes = 4096

    /// The first name in `value` (its tables, at any depth) longer than an AMQP short string; nil when all fit.
    private static func overlongKey(in value: JSONValue) -> String? {
        switch value {
        case .object(let table):
            if let key = table.keys.first(where: { $0.utf8.count > 255 }) { return key }
            return table.values.lazy.compactMap { overlongKey(in: $0) }.first
        case .array(let values): return values.lazy.compactMap { overlongKey(in: $0) }.first
        default: return nil
        }
    }

    /// A count from a request (a whole number, or one as text): 1 to `most`; absent or null is 1.
    private static func count(_ value: JSONValue?, _ command: String, most: Int) throws -> Int {
        try optionalCount(value, command, most: most) ?? 1
    }

    /// A count from a request: nil when absent or null.
    private static func optionalCount(_ value: JSONValue?, _ what: String, most: Int) throws -> Int? {
        let number: Int?
        switch value {
        case nil, .null?: return nil
        case .int(let n)?: number = n
        case .double(let d)?: number = d.isFinite && d == d.rounded() && abs(d) < 1e9 ? Int(d) : nil
        case .string(let text)?: number = Int(text.trimmingWhitespace())
        default: number = nil
        }
        guard let number, (1...most).contains(number) else {
            throw RemoteControlArgumentError(
                "\(what): expected a whole number from 1 to \(most) ([worker] max_concurrency), got \(clip(value?.jsonString ?? ""))")
        }
        return number
    }
}

import AMQP
import FoundationEssentials

/// Declares the exchanges, queues and bindings of a configuration, idempotently.
///
/// Declaring what exists with the same properties changes nothing. What exists with other properties makes
/// RabbitMQ answer 406 PRECONDITION_FAILED; that is reported as "queue X exists with … = A, config says B" with
/// what to do, and the rest of the topology is still declared. A queue whose node is down (404 "home node … is down")
/// is not a problem of the configuration: that error is thrown as it is, so a worker retries on another connection.
public enum Topology {
    /// One declared object, for output.
    public struct Declared: Sendable, Hashable, CustomStringConvertible {
        public var kind: String
        public var name: String
        public var detail: String
        public var description: String { "\(kind) \(name)\(detail.isEmpty ? "" : " (\(detail))")" }
    }

    /// A mismatch between the broker and the configuration, or another refusal.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Declares everything; returns what was declared, or throws the problems (after trying every object).
    @discardableResult
    public static func declare(_ configuration: TasksConfiguration, on connection: Connection) async throws -> [Declared] {
        var declared: [Declared] = []
        var problems: [String] = []
        var channel = try await connection.openChannel()
        func attempt(_ what: String, _ body: (Channel) async throws -> Void) async throws {
            do {
                try await body(channel)
            } catch let error as AMQPError where error.isChannelLevel && !error.isNodeDown {
                problems.append(readable(error, what: what, file: configuration.file))
                channel = try await connection.openChannel()
            }
        }
        for exchange in configuration.exchanges {
            try await attempt("exchange \(exchange.name)") {
                try await $0.declareExchange(
                    exchange.name, type: exchange.type, durable: exchange.durable, autoDelete: exchange.autoDelete,
                    arguments: exchange.arguments)
                declared.append(Declared(kind: "exchange", name: exchange.name, detail: exchange.type.rawValue))
            }
        }
        for queue in configuration.queues {
            try await attempt("dead-letter queue of \(queue.name)") {
                try await DeadLetters.declare(for: queue.name, quorum: queue.kind == .quorum, on: $0)
            }
            try await attempt("queue \(queue.name)") {
                try await $0.declareQueue(queue.name, durable: queue.durable, arguments: queue.declareArguments)
                declared.append(Declared(kind: "queue", name: queue.name, detail: queue.kind.rawValue))
            }
            for binding in queue.bindings {
                try await attempt("binding of \(queue.name) to \(binding.exchange)") {
                    try await $0.bindQueue(queue.name, to: binding.exchange, routingKey: binding.routingKey)
                    declared.append(
                        Declared(kind: "binding", name: "\(binding.exchange) → \(queue.name)", detail: "key \"\(binding.routingKey)\""))
                }
            }
        }
        try? await channel.close()
        if !problems.isEmpty { throw Problem(description: problems.joined(separator: "\n")) }
        return declared
    }

    /// Declares `queue` (durable, with `arguments`) unless it exists; an existing queue is used as it is, whatever
    /// its arguments (quorum, DLX…), so nobody gets a 406 for a queue declared elsewhere. A queue whose node is down
    /// throws the broker's 404 (`isNodeDown`): it exists, and comes back with its node.
    public static func declareQueueIfMissing(
        _ queue: String, arguments: FieldTable = [:], on connection: Connection
    ) async throws {
        let probe = try await connection.openChannel()
        do {
            _ = try await probe.inspectQueue(queue)
            try? await probe.close()
        } catch let error as AMQPError where error.replyCode == .notFound {
            // The 404 closed the probe channel. It may also mean "its node is down": then the declare throws
            // a 404 that says so (`isNodeDown`).
            let channel = try await connection.openChannel()
            try await channel.declareQueue(queue, durable: true, arguments: arguments)
            try await channel.close()
        }
    }

    /// Turns RabbitMQ's 406 text into what the user needs to know.
    static func readable(_ error: AMQPError, what: String, file: String) -> String {
        let source = file.isEmpty ? "the configuration" : file
        let pattern = #/inequivalent arg '([^']+)' for (queue|exchange) '([^']+)' in vhost '[^']*': received (.+) but current is (.+)/#
        if error.replyCode == .preconditionFailed, let m = error.message.firstMatch(of: pattern) {
            let received = clean(String(m.4))
            let current = clean(String(m.5))
            return "\(m.2) \(m.3) exists with \(m.1) = \(current), \(source) says \(received): delete the \(m.2) "
                + "(a queue loses its messages) or change \(source) to match"
        }
        return "\(what): \(error)"
    }

    /// `the value 'quorum' of type 'longstr'` → `'quorum'`.
    private static func clean(_ text: String) -> String {
        if let m = text.firstMatch(of: #/the value (.+) of type '[^']+'/#) { return String(m.1) }
        return text
    }
}

import FoundationEssentials
import Logging

/// A connection to an AMQP 0-9-1 broker (RabbitMQ), served by its own I/O thread.
///
/// ```swift
/// let connection = try await Connection.open(url: "amqp://guest:guest@localhost:5672/%2f")
/// let channel = try await connection.openChannel()
/// try await channel.confirmSelect()
/// try await channel.publish(Data("hello".utf8), exchange: "", routingKey: "greetings")
/// ```
///
/// All methods are safe to call from any task: they hand the work to the connection's I/O thread (rabbitmq-c
/// is not thread-safe) and resume when it is done. Heartbeats flow while your code is busy. When the connection
/// is lost, every pending operation, confirm and consumer fails with the `AMQPError` that says why.
public final class Connection: Sendable {
    let core: ConnectionCore

    /// The settings this connection was opened with.
    public var configuration: ConnectionConfiguration { core.configuration }

    private init(core: ConnectionCore) { self.core = core }

    deinit {
        core.submit(IOOperation(run: { $0.closeConnection() }, fail: { _ in }))
    }

    /// Connects and logs in; throws `AMQPError` saying what failed (nothing listening, TLS, 403 login…).
    public static func open(
        _ configuration: ConnectionConfiguration, logger: Logger = Logger(label: "amqp.connection")
    ) async throws -> Connection {
        let core = ConnectionCore(configuration: configuration, logger: logger)
        try await core.start()
        return Connection(core: core)
    }

    /// Connects to an `amqp://` or `amqps://` URL (see `ConnectionConfiguration.init(url:)`).
    public static func open(url: String, logger: Logger = Logger(label: "amqp.connection")) async throws -> Connection {
        try await open(ConnectionConfiguration(url: url), logger: logger)
    }

    /// Connects to the first of several brokers that answers (the nodes of a cluster), trying them in order
    /// starting at `start`; `urls` may also be one comma-separated string, as `AMQP_URL` allows.
    public static func open(
        anyOf urls: [String], startingAt start: Int = 0, connectionName: String? = nil,
        logger: Logger = Logger(label: "amqp.connection")
    ) async throws -> Connection {
        let configurations = try ConnectionConfiguration.list(urls.joined(separator: ","))
        return try await open(anyOf: configurations, startingAt: start, connectionName: connectionName, logger: logger)
    }

    /// Connects to the first of several brokers that answers (the nodes of a cluster), trying them in order
    /// starting at `start` (wrapping around), so each reconnection can begin at the next node.
    /// - Parameter connectionName: replaces each configuration's `connectionName` when given.
    public static func open(
        anyOf configurations: [ConnectionConfiguration], startingAt start: Int = 0, connectionName: String? = nil,
        logger: Logger = Logger(label: "amqp.connection")
    ) async throws -> Connection {
        guard !configurations.isEmpty else {
            throw AMQPError(.invalidArgument, operation: "connect", message: "no broker configuration given")
        }
        var failures: [String] = []
        let first = ((start % configurations.count) + configurations.count) % configurations.count
        for offset in 0..<configurations.count {
            var configuration = configurations[(first + offset) % configurations.count]
            if let connectionName { configuration.connectionName = connectionName }
            do {
                return try await open(configuration, logger: logger)
            } catch let error as AMQPError where error.kind != .invalidArgument {
                failures.append("\(configuration.redactedDescription): \(error)")
                if offset < configurations.count - 1 { logger.warning("\(failures.last!); trying the next broker") }
            }
        }
        throw AMQPError(
            .library, operation: "connect", message: "no broker answered: " + failures.joined(separator: "; "),
            hint: "check that at least one of the brokers runs")
    }

    /// Opens a new channel. Channels are cheap; use one per consumer, and one per publishing task that wants
    /// its own confirm stream.
    public func openChannel() async throws -> Channel {
        let (id, open) = try await core.perform("channel.open") { try $0.openChannel() }
        return Channel(connection: self, id: id, open: open)
    }

    /// Closes the connection (`connection.close`); pending operations fail with a `.closed` error and consumers
    /// end. Closing twice does nothing.
    public func close() async {
        _ = try? await core.perform("connection.close") { core in core.closeConnection() }
    }

    /// Nil while the connection is open; afterwards the error that closed it (`.closed` after `close()`).
    public var closedError: AMQPError? { core.closedError }

    /// True while the connection is open.
    public var isOpen: Bool { core.closedError == nil }
}

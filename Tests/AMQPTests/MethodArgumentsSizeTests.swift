import AMQP
import Foundation
import Testing

/// A method whose arguments table does not fit in one frame of the negotiated `frame_max` (a declare, bind or
/// consume: AMQP never splits a method frame) is refused with `.invalidArgument` before anything is written, and
/// the channel and connection go on. (rabbitmq-c fails to encode it with `AMQP_STATUS_TABLE_TOO_BIG`, which was
/// taken for a broken connection and closed it, failing everything else on it.)
@Suite struct MethodArgumentsSizeTests {
    static let frameMax = 8192
    /// An argument that alone is larger than a frame.
    static let tooLarge: FieldTable = ["big": .string(String(repeating: "a", count: 10_000))]

    @Test func argumentsLargerThanAFrameAreRefusedByEveryMethodAndTheConnectionGoesOn() async throws {
        var configuration = try ConnectionConfiguration(url: TestBroker.url)
        configuration.frameMax = Self.frameMax
        configuration.connectionName = "test: \(#function)"
        let connection = try await Connection.open(configuration)
        let channel = try await connection.openChannel()
        let queue = try await channel.declareQueue("", durable: false, exclusive: true).name
        let exchange = uniqueName("methodsize")
        try await channel.declareExchange(exchange, type: .fanout, durable: false, autoDelete: true)
        let big = Self.tooLarge
        let calls: [(String, @Sendable () async throws -> Void)] = [
            ("exchange.declare", { try await channel.declareExchange(uniqueName("x"), durable: false, arguments: big) }),
            ("exchange.bind", { try await channel.bindExchange(exchange, to: "amq.direct", arguments: big) }),
            ("queue.declare", { try await channel.declareQueue("", durable: false, exclusive: true, arguments: big) }),
            ("queue.bind", { try await channel.bindQueue(queue, to: exchange, arguments: big) }),
            ("queue.unbind", { try await channel.unbindQueue(queue, from: exchange, arguments: big) }),
            ("basic.consume", { _ = try await channel.consume(queue: queue, arguments: big) }),
        ]
        for (operation, call) in calls {
            let error = await expectAMQPError { try await call() }
            #expect(error?.kind == .invalidArgument, "\(operation) with arguments larger than a frame: \(error.map { "\($0)" } ?? "")")
            #expect(error?.operation == operation)
            #expect(error?.description.contains("frame_max 8192") == true, "says which limit: \(error.map { "\($0)" } ?? "")")
            #expect(connection.isOpen && channel.isOpen, "\(operation) with arguments larger than a frame cost the connection")
        }
        // The same channel still works, and arguments that fill the frame exactly still go. A queue.bind frame is 7
        // (header) + 4 (class, method) + 2 (ticket) + 3 short strings + 1 (nowait) + the table + 1 (frame end); the
        // table ["k": string of n bytes] is 4 + 2 (key) + 5 (type, length) + n.
        let exactFit = Self.frameMax - 15 - (1 + queue.utf8.count) - (1 + exchange.utf8.count) - 1 - 11
        let oneByteOver = await expectAMQPError {
            try await channel.bindQueue(queue, to: exchange, arguments: ["k": .string(String(repeating: "a", count: exactFit + 1))])
        }
        #expect(oneByteOver?.kind == .invalidArgument, "one byte over the frame: \(oneByteOver.map { "\($0)" } ?? "")")
        try await channel.bindQueue(queue, to: exchange, arguments: ["k": .string(String(repeating: "a", count: exactFit))])
        #expect(try await channel.inspectQueue(queue).consumerCount == 0)
        try await channel.deleteExchange(exchange)
        await connection.close()
    }
}

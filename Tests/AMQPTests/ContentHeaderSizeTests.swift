import AMQP
import Foundation
import Testing

/// A message whose properties and headers do not fit in one frame is refused before anything is written, and the
/// channel and connection go on: rabbitmq-c would find out only after the `basic.publish` method frame was sent,
/// and the broker would then close the connection for the missing content header.
@Suite struct ContentHeaderSizeTests {
    /// With `frame_max` 8192, a content header frame holds 8172 bytes of properties (8192 minus 20 bytes of
    /// framing). A headers table with one entry `k` = string of n bytes encodes to 2 (flags) + 4 (table size)
    /// + 1 + 1 (key) + 1 (type) + 4 (length) + n bytes: n = 8159 fills it exactly.
    static let frameMax = 8192
    static let largestFittingValue = 8159

    @Test func headersOneByteTooLargeForTheFrameAreRefusedAndTheConnectionGoesOn() async throws {
        var configuration = try ConnectionConfiguration(url: TestBroker.url)
        configuration.frameMax = Self.frameMax
        configuration.connectionName = "test: \(#function)"
        let connection = try await Connection.open(configuration)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let queue = try await channel.declareQueue("", durable: false, exclusive: true).name
        func message(headerBytes: Int) -> OutgoingMessage {
            var properties = BasicProperties()
            properties.headers = ["k": .string(String(repeating: "x", count: headerBytes))]
            return OutgoingMessage(body: Data("payload".utf8), routingKey: queue, properties: properties)
        }

        let error = await expectAMQPError { try await channel.publish(message(headerBytes: Self.largestFittingValue + 1)) }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.operation == "basic.publish")
        #expect(error?.description.contains("frame_max 8192") == true, "says which limit: \(error.map { "\($0)" } ?? "")")
        #expect(error?.hint?.contains("nothing was sent") == true)

        #expect(connection.isOpen, "the connection was not dropped")
        #expect(channel.isOpen, "nor the channel")
        try await channel.publish(message(headerBytes: Self.largestFittingValue))
        #expect(try await channel.inspectQueue(queue).messageCount == 1, "the exact fit went through; the refused one did not")
        let delivery = try await channel.get(queue: queue, autoAck: true)
        #expect(delivery?.properties.headers?["k"] == .string(String(repeating: "x", count: Self.largestFittingValue)))
        await connection.close()
    }
}

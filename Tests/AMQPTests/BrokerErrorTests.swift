import AMQP
import Foundation
import Testing

/// Refusals by the broker and failures to reach it: each a clear, typed error; the channel or connection usable
/// again where AMQP allows.
@Suite struct BrokerErrorTests {
    @Test func missingExchangeGives404AndOnlyClosesTheChannel() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let queue = try await channel.declareQueue("", durable: false, exclusive: true).name
        let error = await expectAMQPError {
            try await channel.bindQueue(queue, to: "no-such-exchange", routingKey: "x")
        }
        #expect(error?.kind == .channelClosedByServer)
        #expect(error?.replyCode == .notFound)
        #expect(error?.operation == "queue.bind")
        #expect("\(error!)".contains("no exchange 'no-such-exchange'"))

        let again = await expectAMQPError { try await channel.declareQueue("", exclusive: true) }
        #expect(again?.kind == .closed, "the closed channel says so")

        #expect(connection.isOpen)
        let fresh = try await connection.openChannel()
        try await fresh.declareQueue("", durable: false, exclusive: true)
        await connection.close()
    }

    /// A publish whose confirm the broker's `channel.close` ended (404, no such exchange) finds the channel closed
    /// when its error reaches it: a caller that then asks `isOpen` (to repair the channel, or to hand it to the
    /// next sender) must not be told it is open. Repeated: the publish once resumed before the flag was cleared.
    @Test func aPublishEndedByTheBrokerClosingItsChannelFindsTheChannelClosed() async throws {
        let connection = try await TestBroker.connect()
        for _ in 0..<100 {
            let channel = try await connection.openChannel()
            try await channel.confirmSelect()
            let error = await expectAMQPError {
                try await channel.publish(Data("x".utf8), exchange: "no-such-exchange", routingKey: "x")
            }
            #expect(error?.kind == .channelClosedByServer)
            #expect(!channel.isOpen, "the channel reads open after its publish failed with the broker's close")
        }
        await connection.close()
    }

    /// The broker frees a channel's number when it closes the channel on an error, and the next `openChannel()`
    /// may get it. A late call on the old `Channel` (a deferred `close()`, as `defer { Task { try? await
    /// channel.close() } }` makes) must not reach the new channel that has its number now.
    @Test func aChannelTheBrokerClosedNeverActsOnTheNewChannelThatGetsItsNumber() async throws {
        let connection = try await TestBroker.connect()
        let stale = try await connection.openChannel()
        _ = await expectAMQPError { _ = try await stale.inspectQueue(uniqueName("missing")) }
        let fresh = try await connection.openChannel()
        #expect(fresh.id == stale.id, "the freed number is given again (else this test shows nothing)")
        let again = await expectAMQPError { try await stale.declareQueue("", durable: false, exclusive: true) }
        #expect(again?.kind == .closed, "a call on the old channel says it is closed")
        try? await stale.close()
        #expect(fresh.isOpen, "closing the old channel left the new one open")
        try await fresh.declareQueue("", durable: false, exclusive: true)
        await connection.close()
    }

    @Test func aMissingQueueIsCaughtAsNotFoundWithTheRefusedMethodAndIsNotNodeDown() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        var caught: AMQPError?
        do {
            _ = try await channel.inspectQueue(uniqueName("missing"))
            Issue.record("a passive declare of a missing queue succeeded")
        } catch AMQPError.notFound {
            caught = await expectAMQPError { _ = try await channel.inspectQueue("x") }  // the channel is closed now
        }
        #expect(caught?.kind == .closed, "catch AMQPError.notFound caught the 404; the channel then says closed")
        let error = await expectAMQPError { _ = try await connection.openChannel().inspectQueue(uniqueName("missing")) }
        #expect(error?.failedMethod == .queueDeclare, "the broker's channel.close names class 50 method 10")
        #expect(error?.requestWasPassive == true)
        #expect(error?.isNodeDown == false, "a passive 404 is a missing queue as far as anyone can tell")
        await connection.close()
    }

    @Test func publishToMissingExchangeFailsTheConfirm() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let error = await expectAMQPError {
            try await withTimeout(10) {
                try await channel.publish(Data("x".utf8), exchange: "no-such-exchange", routingKey: "x")
            }
        }
        #expect(error?.replyCode == .notFound)
        #expect(error?.kind == .channelClosedByServer)
        await connection.close()
    }

    @Test func redeclareWithOtherArgumentsGives406() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let queue = uniqueName("redeclare")
        try await channel.declareQueue(queue, durable: false, autoDelete: false, arguments: ["x-max-priority": 5])
        try await channel.declareQueue(queue, durable: false, autoDelete: false, arguments: ["x-max-priority": 5])
        let error = await expectAMQPError {
            try await channel.declareQueue(queue, durable: false, arguments: ["x-max-priority": 9])
        }
        #expect(error?.replyCode == .preconditionFailed)
        #expect(error?.kind == .channelClosedByServer)
        #expect("\(error!)".contains("x-max-priority"))
        #expect(error?.hint != nil)
        let fresh = try await connection.openChannel()
        try await fresh.deleteQueue(queue)
        await connection.close()
    }

    @Test func userWithoutConfigurePermissionGets403OnTheChannel() async throws {
        let connection = try await Connection.open(url: "amqp://reader:reader-password@127.0.0.1:\(TestBroker.port)/%2f")
        let channel = try await connection.openChannel()
        let error = await expectAMQPError { try await channel.declareExchange(uniqueName("forbidden")) }
        #expect(error?.replyCode == .accessRefused)
        #expect(error?.kind == .channelClosedByServer)
        #expect(connection.isOpen)
        await connection.close()
    }

    @Test func vhostWithoutPermissionIsRefusedAtConnectionOpen() async throws {
        let error = await expectAMQPError {
            _ = try await Connection.open(url: "amqp://guest:guest@127.0.0.1:\(TestBroker.port)/amqp-tasks-forbidden")
        }
        #expect(error?.kind == .connectionClosedByServer)
        #expect(error?.replyCode == .notAllowed, "RabbitMQ answers connection.open on a forbidden vhost with 530")
        #expect("\(error!)".contains("amqp-tasks-forbidden"))
    }

    @Test func wrongPasswordGives403() async throws {
        let error = await expectAMQPError {
            _ = try await Connection.open(url: "amqp://guest:wrong@127.0.0.1:\(TestBroker.port)/%2f")
        }
        #expect(error?.kind == .connectionClosedByServer)
        #expect(error?.replyCode == .accessRefused)
        #expect(!"\(error!)".contains("wrong"), "the password is never in the message")
    }

    @Test func nothingListeningGivesAClearError() async throws {
        let error = await expectAMQPError {
            _ = try await Connection.open(url: "amqp://guest:guest@127.0.0.1:1/%2f?connection_timeout=2000")
        }
        #expect(error?.kind == .library)
        #expect("\(error!)".contains("127.0.0.1:1"))
        #expect(error?.hint?.contains("Deploy/broker start") == true)
    }

    @Test func connectionErrorFailsEverythingPendingAndLaterCalls() async throws {
        let connection = try await TestBroker.connect()
        let consumerChannel = try await connection.openChannel()
        let queue = try await consumerChannel.declareQueue("", durable: false, exclusive: true).name
        let consumer = try await consumerChannel.consume(queue: queue)
        let channel = try await connection.openChannel()
        // An unknown exchange type is a hard error in RabbitMQ: 503 COMMAND_INVALID closes the connection.
        let error = await expectAMQPError {
            try await channel.declareExchange(uniqueName("bogus"), type: "x-no-such-type")
        }
        #expect(error?.kind == .connectionClosedByServer)
        #expect(error?.replyCode == .commandInvalid)
        await #expect(throws: AMQPError.self) {
            try await withTimeout(10) { for try await _ in consumer {} }
        }
        let later = await expectAMQPError { _ = try await connection.openChannel() }
        #expect(later?.replyCode == .commandInvalid, "later calls fail with the error that closed the connection")
        #expect(!connection.isOpen)
    }

    @Test func invalidURLsAreRejectedBeforeConnecting() throws {
        #expect(throws: AMQPError.self) { try ConnectionConfiguration(url: "http://localhost") }
        #expect(throws: AMQPError.self) { try ConnectionConfiguration(url: "amqp://h/a/b") }
        #expect(throws: AMQPError.self) { try ConnectionConfiguration(url: "amqp://h/?heartbeat=abc") }
        #expect(throws: AMQPError.self) { try ConnectionConfiguration(url: "amqp://h/?cacertfile=/x") }
        let c = try ConnectionConfiguration(
            url: "amqps://u%40x:p%2Fw@broker.example:7000/my%2fvhost?heartbeat=5&connection_timeout=2500&cacertfile=/ca.pem")
        #expect(c.user == "u@x")
        #expect(c.password == "p/w")
        #expect(c.host == "broker.example")
        #expect(c.port == 7000)
        #expect(c.vhost == "my/vhost")
        #expect(c.heartbeat == .seconds(5))
        #expect(c.connectionTimeout == .milliseconds(2500))
        #expect(c.tls?.caFile == "/ca.pem")
        #expect(c.tls?.verifyPeer == true)
        #expect(try ConnectionConfiguration(url: "amqp://localhost").vhost == "/")
        #expect(try ConnectionConfiguration(url: "amqp://localhost/%2f").vhost == "/")
        #expect(try ConnectionConfiguration(url: "amqps://localhost").port == 5671)
        #expect(ConnectionConfiguration.masked("amqp://u:secret@h/") == "amqp://u:***@h/")
    }
}

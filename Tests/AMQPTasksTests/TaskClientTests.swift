import AMQP
@testable import AMQPTasks
import Foundation
import Testing

/// TaskClient against the local broker: refusals that close its publishing channel, closing, reply queue types.
/// (Lost connections and broker restarts are in Tests/InteropTests/test_faults.py, which can break the broker.)
@Suite struct TaskClientTests {
    @Test func aSendToAMissingExchangeFails404AndTheNextSendStillWorks() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let queue = uniqueQueue("after404")
        try await client.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        var missing = SendOptions()
        missing.exchange = "no-such-exchange-\(UUID().uuidString)"
        let error = await #expect(throws: TaskClientError.self) { try await client.send("demo.add", options: missing) }
        #expect(error?.code == .notConfirmed)
        #expect(error?.cause?.replyCode == .notFound)
        #expect(error?.cause?.kind == .channelClosedByServer)
        // The broker closed the publishing channel; the client opens a new one for the next send.
        let id = try await client.send("demo.add", args: [1, 2], options: SendOptions(queue: queue))
        let channel = try await client.openChannel()
        let delivery = try #require(try await channel.get(queue: queue, autoAck: true))
        #expect(try TaskMessage.decode(properties: delivery.properties, body: delivery.body).id == id)
        try await channel.deleteQueue(queue)
        await client.close()
    }

    /// `send` takes the link's ready session without a hop onto its actor (issue 17): it must stop being offered
    /// once the broker closed its publishing channel, and once the client is closed.
    @Test func theReadySessionIsWithdrawnWhenItsChannelIsClosedAndWhenTheClientCloses() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let queue = uniqueQueue("readysession")
        try await client.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        try await client.send("demo.add", args: [1, 2], options: SendOptions(queue: queue))
        let first = try #require(client.link.readySession, "a session that just published is ready")
        var missing = SendOptions()
        missing.exchange = "no-such-exchange-\(UUID().uuidString)"
        await #expect(throws: TaskClientError.self) { try await client.send("demo.add", options: missing) }
        #expect(!first.publisher.isOpen)
        #expect(client.link.readySession == nil, "the broker closed its channel: send must repair it, not use it")
        try await client.send("demo.add", args: [3, 4], options: SendOptions(queue: queue))
        let repaired = try #require(client.link.readySession)
        #expect(repaired.publisher.isOpen && repaired.generation == first.generation)
        let channel = try await client.openChannel()
        #expect(try await channel.inspectQueue(queue).messageCount == 2)
        try await channel.deleteQueue(queue)
        await client.close()
        #expect(client.link.readySession == nil)
        let error = await #expect(throws: TaskClientError.self) { try await client.send("demo.add") }
        #expect(error?.code == .closed)
    }

    /// The broker may close the publishing channel (another sender's 404) before any sender reported it: the next
    /// send must see the closed channel and replace it on the same connection, not publish on it, take the `.closed`
    /// for a lost connection and drop the healthy connection (every publish in flight on it, the result consumer).
    @Test func aPublishingChannelClosedUnreportedIsReplacedWithoutReconnecting() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let queue = uniqueQueue("closedunreported")
        try await client.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        let first = try #require(client.link.readySession)
        try await first.publisher.close()  // closed without a word to the link, as a broker's channel.close is
        let id = try await client.send("demo.add", args: [1, 2], options: SendOptions(queue: queue))
        let now = try #require(client.link.readySession)
        #expect(now.generation == first.generation, "the connection was healthy: the send must not reconnect")
        #expect(first.connection.isOpen)
        #expect(now.publisher.isOpen && now.publisher !== first.publisher)
        let channel = try await client.openChannel()
        let delivery = try #require(try await channel.get(queue: queue, autoAck: true))
        #expect(try TaskMessage.decode(properties: delivery.properties, body: delivery.body).id == id)
        try await channel.deleteQueue(queue)
        await client.close()
    }

    /// A sender that took the session before the broker closed its publishing channel gets `.closed` (a connection
    /// loss by its kind) from its publish: with the connection still open, only the channel is replaced.
    @Test func aClosedChannelReportedAsAConnectionLossKeepsTheOpenConnection() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let queue = uniqueQueue("staleclosed")
        try await client.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        let first = try #require(client.link.readySession)
        try await first.publisher.close()
        await client.link.publishFailed(
            first, because: AMQPError(.closed, operation: "basic.publish", message: "channel is closed"))
        #expect(first.connection.isOpen, "only the channel was closed: the connection must stay")
        try await client.send("demo.add", options: SendOptions(queue: queue))
        #expect(client.link.readySession?.generation == first.generation)
        try await client.openChannel().deleteQueue(queue)
        await client.close()
    }

    /// A sender that held the publishing channel before it was replaced reports its loss late: the replacement,
    /// open and in use, must stay (not be marked broken, replaced again and left open, unused, on the connection).
    @Test func aLateReportOfAReplacedChannelLeavesItsReplacementAlone() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let queue = uniqueQueue("latereport")
        try await client.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        let first = try #require(client.link.readySession)
        var missing = SendOptions()
        missing.exchange = "no-such-exchange-\(UUID().uuidString)"
        await #expect(throws: TaskClientError.self) { try await client.send("demo.add", options: missing) }
        try await client.send("demo.add", options: SendOptions(queue: queue))
        let replacement = try #require(client.link.readySession)
        #expect(replacement.publisher !== first.publisher && replacement.generation == first.generation)
        await client.link.channelLost(first)
        #expect(client.link.readySession?.publisher === replacement.publisher, "a late report broke the new channel")
        try await client.openChannel().deleteQueue(queue)
        await client.close()
    }

    /// Many senders find the publishing channel closed at once (the broker closed it for a 404): one new channel
    /// replaces it. One each left all but the last open and unused on the connection, up to `channel_max`.
    @Test func concurrentSendersAfterA404ShareOneNewPublishingChannel() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let admin = try await Connection.open(url: Broker.url)
        let queue = uniqueQueue("sharedrepair")
        try await admin.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        let first = try #require(client.link.readySession)
        var missing = SendOptions()
        missing.exchange = "no-such-exchange-\(UUID().uuidString)"
        await #expect(throws: TaskClientError.self) { try await client.send("demo.add", options: missing) }
        let senders = 50
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<senders {
                group.addTask { try await client.send("demo.add", args: [.int(index)], options: SendOptions(queue: queue)) }
            }
            try await group.waitForAll()
        }
        #expect(try await admin.openChannel().inspectQueue(queue).messageCount == senders)
        // The client's connection has its publishing channel (the 404's number, reused) and the result consumer's:
        // a probe takes the next number only when no other replacement was left open.
        let probe = try await first.connection.openChannel()
        #expect(probe.id == 3, "channels left open by concurrent replacements")
        try await admin.openChannel().deleteQueue(queue)
        await admin.close()
        await client.close()
    }

    /// One caller's send to a missing exchange makes the broker close the shared publishing channel, dropping the
    /// other callers' messages published after it: they must be published again, not refused with its 404.
    @Test func aSendToAMissingExchangeFailsAloneAmongConcurrentSends() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let admin = try await Connection.open(url: Broker.url)
        let queue = uniqueQueue("innocent404")
        try await admin.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        var missingOptions = SendOptions()
        missingOptions.exchange = "no-such-exchange-\(UUID().uuidString)"
        let missing = missingOptions
        let senders = 300
        let culprit = senders / 2
        let failures = try await withThrowingTaskGroup(of: (Int, TaskClientError?).self) { group in
            for index in 0..<senders {
                group.addTask {
                    do {
                        let options = index == culprit ? missing : SendOptions(queue: queue)
                        try await client.send("demo.add", args: [.int(index)], options: options)
                        return (index, nil)
                    } catch let error as TaskClientError {
                        return (index, error)
                    }
                }
            }
            var failures: [Int: TaskClientError] = [:]
            for try await (index, error) in group { failures[index] = error }
            return failures
        }
        #expect(failures[culprit]?.cause?.replyCode == .notFound, "the send to the missing exchange fails with 404")
        let others = failures.filter { $0.key != culprit }
        #expect(others.count == 0, "\(others.count) other sends failed, e.g. \(others.first.map { "\($0.value)" } ?? "")")
        // Every other task arrived; one the broker took before it closed the channel, but had not confirmed yet, is
        // published again and may arrive twice (at-least-once, as after a lost connection).
        let reader = try await admin.openChannel()
        var arrived = Set<String>()
        while let delivery = try await reader.get(queue: queue, autoAck: true) {
            arrived.insert(try TaskMessage.decode(properties: delivery.properties, body: delivery.body).id)
        }
        #expect(arrived.count == senders - 1)
        try await reader.deleteQueue(queue)
        await admin.close()
        await client.close()
    }

    @Test func aTaskWithALargeArgumentIsSentWithItsReprCutAsCeleryCutsIt() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let queue = uniqueQueue("largearg")
        try await client.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        // Its full repr (200 KB) would not fit the 128 KB frame: before the cut, send retried for its whole window.
        let large = String(repeating: "x", count: 200_000)
        let id = try await client.send(
            "demo.echo", args: [.string(large)], kwargs: ["note": .string(large)], options: SendOptions(queue: queue))
        let channel = try await client.openChannel()
        let delivery = try #require(try await channel.get(queue: queue, autoAck: true))
        let message = try TaskMessage.decode(properties: delivery.properties, body: delivery.body)
        #expect(message.id == id)
        #expect(message.args == [.string(large)])
        let argsRepr = try #require(message.argsRepr)
        #expect(argsRepr.count == TaskMessage.maxReprLength + 3 && argsRepr.hasSuffix("..."))
        #expect(argsRepr.hasPrefix("('xxx"))
        #expect(try #require(message.kwargsRepr).count == TaskMessage.maxReprLength + 3)
        // A short repr is sent whole.
        #expect(TaskMessage.shortened("(1, 2)") == "(1, 2)")
        #expect(TaskMessage.shortened(String(repeating: "é", count: 1024)) == String(repeating: "é", count: 1024))
        try await channel.deleteQueue(queue)
        await client.close()
    }

    @Test func closingTheClientEndsWaitingResultCallsAndLaterSends() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let waiting = Task { try await client.result(for: "never-sent", timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(200))
        await client.close()
        let started = ContinuousClock.now
        let waitError = await #expect(throws: TaskClientError.self) { _ = try await waiting.value }
        #expect(waitError?.code == .closed)
        #expect(ContinuousClock.now - started < .seconds(10), "close ends the wait, not the timeout")
        let error = await #expect(throws: TaskClientError.self) { try await client.send("demo.add") }
        #expect(error?.code == .closed)
    }

    /// Arguments that cannot be sent fail as `.badArguments` before anything reaches a queue, and the client goes on.
    @Test func argumentsThatCannotBeSentFailAsBadArguments() async throws {
        let client = try await TaskClient.connect(url: Broker.url)
        let queue = uniqueQueue("badargs")
        try await client.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        var overlong = SendOptions(queue: queue)
        overlong.headers[String(repeating: "k", count: 256)] = 1
        let header = await #expect(throws: TaskClientError.self) { try await client.send("demo.add", options: overlong) }
        #expect(header?.code == .badArguments)
        #expect(header?.cause?.kind == .invalidArgument)
        let scalar = await #expect(throws: TaskClientError.self) {
            try await client.send(ScalarArguments(value: 3), options: SendOptions(queue: queue))
        }
        #expect(scalar?.code == .badArguments)
        #expect(scalar?.description.contains("not a JSON object") == true)
        let channel = try await client.openChannel()
        #expect(try await channel.inspectQueue(queue).messageCount == 0, "nothing was sent")
        try await client.send("demo.add", args: [1, 2], options: SendOptions(queue: queue))
        #expect(try await channel.inspectQueue(queue).messageCount == 1, "the client goes on")
        try await channel.deleteQueue(queue)
        await client.close()
    }

    /// A header too large for the negotiated frame size (a content header travels in one frame) is the caller's
    /// to fix, not a lost connection: the send fails at its first attempt, says so, and the connection stays.
    @Test func headersTooLargeForTheFrameFailAtOnceAndKeepTheConnection() async throws {
        // A window long enough that a send retried as if the connection were lost would run out of attempts
        // first; the assertion is on the attempt count, not on time.
        let client = try await TaskClient.connect(url: Broker.url, reconnect: ReconnectPolicy(sendRetryWindow: .seconds(20)))
        let queue = uniqueQueue("bigheaders")
        let channel = try await client.openChannel()
        try await channel.declareQueue(queue, durable: false, autoDelete: false)
        let before = try await client.link.session().connection
        var huge = SendOptions(queue: queue)
        huge.headers["big"] = .string(String(repeating: "x", count: 200_000))  // frame_max is 128 KiB by default
        let error = await #expect(throws: TaskClientError.self) { try await client.send("demo.add", options: huge) }
        #expect(error?.code == .badArguments, "refused as given, not retried: \(error.map { "\($0)" } ?? "")")
        #expect(error?.attempts == 1)
        #expect(error?.cause?.kind == .invalidArgument)
        #expect(error?.description.contains("frame_max") == true)
        let after = try await client.link.session().connection
        #expect(before === after && after.isOpen, "the same connection goes on")
        #expect(try await channel.inspectQueue(queue).messageCount == 0, "nothing was sent")
        try await client.send("demo.add", args: [1, 2], options: SendOptions(queue: queue))
        #expect(try await channel.inspectQueue(queue).messageCount == 1, "the client goes on")
        try await channel.deleteQueue(queue)
        await client.close()
    }

    @Test func theReplyQueueIsQuorumWhenTheClientIsGivenSeveralBrokers() async throws {
        let queue = uniqueQueue("replies")
        let client = try await TaskClient.connect(url: "\(Broker.url),\(Broker.url)", replyQueue: queue)
        let channel = try await client.openChannel()
        // Declared again as a classic queue, RabbitMQ refuses: the queue is a quorum queue.
        let error = await #expect(throws: AMQPError.self) {
            try await channel.declareQueue(queue, durable: true, arguments: ["x-expires": .int32(86_400_000)])
        }
        #expect(error?.replyCode == .preconditionFailed)
        #expect(error?.message.contains("x-queue-type") == true)
        await client.close()
        let cleanup = try await Connection.open(url: Broker.url)
        try await cleanup.openChannel().deleteQueue(queue)
        await cleanup.close()
    }

    @Test func aSingleBrokerGetsAClassicReplyQueueThatExpires() async throws {
        let queue = uniqueQueue("replies")
        let client = try await TaskClient.connect(url: Broker.url, replyQueue: queue)
        let channel = try await client.openChannel()
        // The same declaration is accepted: classic, durable, x-expires one day.
        try await channel.declareQueue(queue, durable: true, arguments: ["x-expires": .int32(86_400_000)])
        await client.close()
        let cleanup = try await Connection.open(url: Broker.url)
        try await cleanup.openChannel().deleteQueue(queue)
        await cleanup.close()
    }
}

/// Typed arguments that encode to a bare number instead of an object of kwargs.
struct ScalarArguments: TaskArguments {
    static let taskName = "demo.add"
    var value: Int

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

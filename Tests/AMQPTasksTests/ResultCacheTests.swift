import AMQP
@testable import AMQPTasks
import Foundation
import Testing

/// The client's store of results nobody has asked for yet: bounded in count per kind and in age, against a real
/// broker and worker.
@Suite struct ResultCacheTests {
    /// Publishes `count` SUCCESS results for tasks the client never sent to its reply queue, confirmed.
    static func publishStrays(_ count: Int, to replyQueue: String) async throws {
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let messages = (0..<count).map { index in
            OutgoingMessage(
                body: ResultMessage.success("stray-\(index)-\(UUID().uuidString)", .string(String(repeating: "x", count: 100))).json.jsonData(),
                routingKey: replyQueue,
                properties: BasicProperties(contentType: "application/json", contentEncoding: "utf-8"))
        }
        for result in try await channel.publish(batch: messages) { try result.get() }
        await connection.close()
    }

    @Test func strayResultsOnTheReplyQueueStayBoundedAndAwaitedOnesStillArrive() async throws {
        let queue = uniqueQueue("strays")
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(
            url: Broker.url, resultCache: ResultCacheLimits(maxResults: 50, maxUnexpectedResults: 20))
        let before = try await client.send("demo.add", args: [1, 2], options: SendOptions(queue: queue))
        try await Self.publishStrays(500, to: client.replyQueue)
        let after = try await client.send("demo.add", args: [3, 4], options: SendOptions(queue: queue))
        #expect(try await client.value(for: before, timeout: .seconds(30)) == 3)
        // Its result was published after every stray, and one consumer takes the reply queue in order.
        #expect(try await client.value(for: after, timeout: .seconds(30)) == 7)
        #expect(await client.unclaimedResultCount <= 20, "at most maxUnexpectedResults strays are kept")
        #expect(await client.droppedResultCount >= 480)
        await client.close()
        try await worker.stop()
    }

    @Test func unclaimedResultsOfSentTasksKeepTheNewest() async throws {
        let queue = uniqueQueue("unclaimed")
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(
            url: Broker.url, resultCache: ResultCacheLimits(maxResults: 5, maxUnexpectedResults: 5))
        var ids: [String] = []
        for index in 0..<20 {
            ids.append(try await client.send("demo.add", args: [.int(index), 0], options: SendOptions(queue: queue)))
        }
        // One consumer with prefetch 1 answers in order: the last result arrives last.
        #expect(try await client.value(for: ids[19], timeout: .seconds(30)) == 19)
        #expect(await client.unclaimedResultCount == 4, "the 4 newest still wait for their callers")
        #expect(await client.droppedResultCount == 15)
        #expect(try await client.value(for: ids[15], timeout: .seconds(5)) == 15)
        await #expect(throws: TaskClientError.self, "dropped: it never comes") {
            try await client.result(for: ids[0], timeout: .milliseconds(300))
        }
        await client.close()
        try await worker.stop()
    }

    @Test func aFloodOfStraysDoesNotPushOutResultsOfSentTasks() async throws {
        let queue = uniqueQueue("flooded")
        let worker = try await RunningWorker.start(queues: [queue])
        let client = try await TaskClient.connect(
            url: Broker.url, resultCache: ResultCacheLimits(maxResults: 5, maxUnexpectedResults: 5))
        var ids: [String] = []
        for index in 0..<3 {
            ids.append(try await client.send("demo.add", args: [.int(index), 10], options: SendOptions(queue: queue)))
        }
        try await Self.publishStrays(200, to: client.replyQueue)
        let marker = try await client.send("demo.add", args: [100, 0], options: SendOptions(queue: queue))
        #expect(try await client.value(for: marker, timeout: .seconds(30)) == 100)
        for (index, id) in ids.enumerated() {
            #expect(try await client.value(for: id, timeout: .seconds(5)) == .int(index + 10))
        }
        await client.close()
        try await worker.stop()
    }

    @Test func entriesOlderThanMaxAgeAreDropped() {
        var cache = ResultCache(limits: ResultCacheLimits(maxResults: 10, maxUnexpectedResults: 10, maxAge: .seconds(60)))
        let start = Date(timeIntervalSince1970: 1_000_000)
        cache.record(.success("old", 1), expected: true, at: start)
        cache.record(ResultMessage(taskId: "running", status: .started), expected: false, at: start.addingTimeInterval(30))
        #expect(cache.entry("old", at: start.addingTimeInterval(59))?.final != nil)
        #expect(cache.entry("old", at: start.addingTimeInterval(60)) == nil, "too old to hand out")
        cache.record(.success("new", 2), expected: true, at: start.addingTimeInterval(61))
        #expect(cache.count == 2 && cache.dropped == 1)
        cache.record(.success("newer", 3), expected: false, at: start.addingTimeInterval(91))
        #expect(cache.entry("running", at: start.addingTimeInterval(91)) == nil && cache.dropped == 2)
        cache.remove("new")
        #expect(cache.count == 1)
    }
}

import AMQP
import AMQPTasks
import Foundation
import Testing

/// What the periodic scheduler keeps in the broker, on the real broker: a state queue holds only the newest record
/// (the design publishes a tick and its record in one transaction and acknowledges nothing), reading it takes
/// nothing away, and the leader is whoever holds the exclusive lock queue.
@Suite(.serialized) struct BeatStateTests {
    func connect() async throws -> Connection {
        try await Connection.open(url: Broker.url)
    }

    func tick(_ seconds: Double) -> Date { Date(timeIntervalSince1970: seconds.rounded(.down)) }

    @Test func aStateQueueKeepsOnlyTheNewestRecordEvenWhileAReaderHoldsAnOlderOne() async throws {
        let connection = try await connect()
        let schedule = "test.beat.\(UUID().uuidString.prefix(8).lowercased())"
        let queue = BeatQueues.state(schedule)
        let setup = try await connection.openChannel()
        try await setup.declareQueue(queue, durable: true, arguments: BeatQueues.lastValueArguments)
        let writer = try await connection.openChannel()
        try await writer.selectTransactions()
        let now = Date().timeIntervalSince1970
        for offset in [0.0, 1, 2] {
            try await writer.publish(BeatRecord(schedule: schedule, tick: tick(now + offset), writer: "t").outgoing(to: queue))
            try await writer.commit()
        }
        var status = try await BeatStatus.read(schedules: [schedule], on: connection)
        #expect(status.lastSent[schedule]?.tick == tick(now + 2))
        #expect(try await setup.inspectQueue(queue).messageCount == 1, "older records were dropped")

        // A reader (amqp-task schedules, a new leader) holds the record while the leader writes the next one.
        let reader = try await connection.openChannel()
        let held = try #require(try await reader.get(queue: queue))
        #expect(BeatRecord(body: held.body)?.tick == tick(now + 2))
        try await writer.publish(BeatRecord(schedule: schedule, tick: tick(now + 3), writer: "t").outgoing(to: queue))
        try await writer.commit()
        try await reader.close()  // returns what it held
        status = try await BeatStatus.read(schedules: [schedule], on: connection)
        #expect(status.lastSent[schedule]?.tick == tick(now + 3))
        #expect(try await setup.inspectQueue(queue).messageCount == 1, "the held record did not come back beside the new one")

        // Reading twice leaves the record in place.
        status = try await BeatStatus.read(schedules: [schedule, "no.such.schedule"], on: connection)
        #expect(status.lastSent[schedule]?.tick == tick(now + 3))
        #expect(status.lastSent["no.such.schedule"] == nil)
        try await setup.deleteQueue(queue)
        await connection.close()
    }

    @Test func theLeaderIsTheHolderOfTheLockNamedInLeaderInfo() async throws {
        let observer = try await connect()
        #expect(try await BeatStatus.read(schedules: [], on: observer).leader == nil, "no instance holds the lock")

        let holder = try await connect()
        let channel = try await holder.openChannel()
        try await channel.declareQueue(BeatQueues.leader, durable: false, exclusive: true, autoDelete: false)
        try await channel.declareQueue(BeatQueues.leaderInfo, durable: true, arguments: BeatQueues.lastValueArguments)
        try await channel.confirmSelect()
        try await channel.publish(BeatRecord(writer: "holder@test").outgoing(to: BeatQueues.leaderInfo))
        #expect(try await BeatStatus.read(schedules: [], on: observer).leader == "holder@test")

        // Another connection cannot take the lock while it is held.
        let rival = try await connect()
        let rivalChannel = try await rival.openChannel()
        do {
            try await rivalChannel.declareQueue(BeatQueues.leader, durable: false, exclusive: true, autoDelete: false)
            Issue.record("a second connection took the lock")
        } catch let error as AMQPError {
            #expect(error.replyCode == .resourceLocked)
        }
        await holder.close()  // the lock goes with the connection
        #expect(try await BeatStatus.read(schedules: [], on: observer).leader == nil)
        let retry = try await rival.openChannel()
        try await retry.declareQueue(BeatQueues.leader, durable: false, exclusive: true, autoDelete: false)
        await rival.close()
        await observer.close()
    }
}

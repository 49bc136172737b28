import AMQP
import AMQPTasks
import Foundation
import Logging
import Synchronization
import Testing

/// What the periodic scheduler keeps in the broker, on the real broker: records of ticks sent (the latest wins,
/// in whatever order they come back), the leader's note, the lock; and a scheduler handing over while a reader
/// keeps reading its state.
@Suite(.serialized) struct BeatStateTests {
    func connect() async throws -> Connection {
        try await Connection.open(url: Broker.url)
    }

    func tick(_ seconds: Double) -> Date { Date(timeIntervalSince1970: seconds.rounded(.down)) }

    func uniqueSchedule() -> String { "test.beat.\(UUID().uuidString.prefix(8).lowercased())" }

    @Test func theLatestRecordWinsAndTheLeadersNoteShowsWhatItHolds() async throws {
        let connection = try await connect()
        let schedule = uniqueSchedule()
        let queue = BeatQueues.state(schedule)
        let setup = try await connection.openChannel()
        try await setup.declareQueue(queue, durable: true, arguments: BeatQueues.stateArguments)
        try await setup.confirmSelect()
        let now = Date().timeIntervalSince1970
        // Records come back from a dead leader in any order: the latest tick wins.
        for offset in [0.0, 2, 1] {
            try await setup.publish(BeatRecord(schedule: schedule, tick: tick(now + offset), writer: "t").outgoing(to: queue))
        }
        #expect(try await BeatStatus.read(schedules: [schedule], on: connection).lastSent[schedule] == tick(now + 2))

        // A leader holds its records; its note (leader-info) says what it sent.
        let other = uniqueSchedule()
        try await setup.declareQueue(BeatQueues.leaderInfo, durable: true, arguments: BeatQueues.leaderInfoArguments)
        try await setup.publish(
            BeatRecord(writer: "note@test", lastTicks: [other: tick(now + 7)]).outgoing(to: BeatQueues.leaderInfo))
        let status = try await BeatStatus.read(schedules: [schedule, other, "no.such.schedule"], on: connection)
        #expect(status.lastSent[other] == tick(now + 7))
        #expect(status.lastSent["no.such.schedule"] == nil)
        try await setup.deleteQueue(queue)
        await connection.close()
    }

    @Test func theLeaderIsTheHolderOfTheLockNamedInItsNote() async throws {
        let observer = try await connect()
        #expect(try await BeatStatus.read(schedules: [], on: observer).leader == nil, "no instance holds the lock")

        let holder = try await connect()
        let channel = try await holder.openChannel()
        try await channel.declareQueue(BeatQueues.leader, durable: false, exclusive: true, autoDelete: false)
        try await channel.declareQueue(BeatQueues.leaderInfo, durable: true, arguments: BeatQueues.leaderInfoArguments)
        try await channel.confirmSelect()
        let since = tick(Date().timeIntervalSince1970)
        try await channel.publish(BeatRecord(writer: "holder@test", since: since).outgoing(to: BeatQueues.leaderInfo))
        // A note without its writer's holder queue is an earlier leader's: not trusted.
        #expect(try await BeatStatus.read(schedules: [], on: observer).leader == BeatStatus.takingOver)
        try await channel.declareQueue(BeatQueues.holder("holder@test"), durable: false, exclusive: true, autoDelete: false)
        let status = try await BeatStatus.read(schedules: [], on: observer)
        #expect(status.leader == "holder@test")
        #expect(status.leaderSince == since)

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

    /// Two schedulers in turn, every second, while a reader reads their state without pause (what `amqp-task
    /// schedules` does): every tick id arrives once, and the second scheduler goes on after the first one's ticks.
    @Test func aHandOverWhileAReaderKeepsReadingSendsNoTickTwice() async throws {
        let schedule = uniqueSchedule()
        let queue = "test.beat.ticks.\(UUID().uuidString.prefix(8).lowercased())"
        let configuration = TasksConfiguration(
            broker: try BrokerSettings(url: Broker.url), queues: [QueueDefinition(name: queue)],
            schedules: [schedule: ScheduleSettings(name: schedule, task: "demo.add", timing: .every(seconds: 1), queue: queue)])
        let connection = try await connect()
        let channel = try await connection.openChannel()
        try await channel.declareQueue(queue, durable: true)
        let start = Int(Date().timeIntervalSince1970)
        var tickOf: [String: Int] = [:]
        for second in start - 5..<start + 600 { tickOf[TickID.id(schedule: schedule, tick: Date(timeIntervalSince1970: Double(second)))] = second }

        let reader = Task {
            let readerConnection = try await connect()
            while !Task.isCancelled { _ = try await BeatStatus.read(schedules: [schedule], on: readerConnection) }
            await readerConnection.close()
        }
        var logger = Logger(label: "test.beat")
        logger.logLevel = .warning
        var received: [Int] = []
        func receive(until count: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(30)  // a safety net only
            while received.count < count {
                guard ContinuousClock.now < deadline else {
                    Issue.record("no tick for 30 s; received \(received)")
                    return
                }
                guard let delivery = try await channel.get(queue: queue, autoAck: true) else {
                    try await Task.sleep(for: .milliseconds(20))
                    continue
                }
                let id = delivery.properties.headers?["id"]?.stringValue
                received.append(try #require(id.flatMap { tickOf[$0] }, "a tick of this schedule"))
            }
        }
        for identity in ["first@test", "second@test"] {
            let beat = BeatService(configuration: configuration, identity: identity, logger: logger)
            let running = Task { try await beat.run() }
            try await receive(until: received.count + 3)
            running.cancel()
            try? await running.value
        }
        reader.cancel()
        try? await reader.value
        #expect(received.count == 6)
        #expect(Set(received).count == received.count, "a tick was sent twice: \(received)")
        #expect(received == received.sorted(), "the second scheduler went on after the first one's ticks: \(received)")
        try await channel.deleteQueue(queue)
        try await channel.deleteQueue(BeatQueues.state(schedule))
        await connection.close()
    }

    /// A tick to an exchange that exists but has no binding for its routing key: the broker drops it at the
    /// commit, and the scheduler says so (Celery's beat loses such a tick without a word).
    @Test func aTickNoQueueTookIsReported() async throws {
        let schedule = uniqueSchedule()
        let exchange = "test.beat.unbound.\(UUID().uuidString.prefix(8).lowercased())"
        let connection = try await connect()
        let channel = try await connection.openChannel()
        try await channel.declareExchange(exchange, type: .direct, durable: false, autoDelete: false)
        let configuration = TasksConfiguration(
            broker: try BrokerSettings(url: Broker.url),
            routes: [Route(pattern: "demo.unbound", target: .exchange(exchange, routingKey: "nobody"))],
            schedules: [schedule: ScheduleSettings(name: schedule, task: "demo.unbound", timing: .every(seconds: 1))])
        let dropped = CapturedLog()
        let logger = Logger(label: "test.beat") { _ in dropped.handler(containing: "was dropped by the broker") }
        let running = Task { try await BeatService(configuration: configuration, identity: "unbound@test", logger: logger).run() }
        let deadline = ContinuousClock.now + .seconds(30)
        while dropped.count == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        running.cancel()
        try? await running.value
        let message = try #require(dropped.messages.first, "the scheduler never reported a dropped tick")
        #expect(message.contains(schedule) && message.contains(exchange) && message.contains("nobody"), "\(message)")
        try await channel.deleteExchange(exchange)
        try await channel.deleteQueue(BeatQueues.state(schedule))
        await connection.close()
    }

    @Test func aTickForAMissingQueueIsNeitherSentNorRecordedUntilTheQueueExists() async throws {
        let schedule = uniqueSchedule()
        let queue = "test.beat.later.\(UUID().uuidString.prefix(8).lowercased())"
        let configuration = TasksConfiguration(
            broker: try BrokerSettings(url: Broker.url),
            schedules: [schedule: ScheduleSettings(name: schedule, task: "demo.add", timing: .every(seconds: 1), queue: queue)])
        let connection = try await connect()
        let notSent = CapturedLog()
        let logger = Logger(label: "test.beat") { _ in notSent.handler(containing: "not sent") }
        let beat = BeatService(configuration: configuration, identity: "missing@test", logger: logger)
        let ledAt = Date().timeIntervalSince1970
        let running = Task { try await beat.run() }
        // Wait until two ticks were refused for the missing queue (each is reported once).
        let deadline = ContinuousClock.now + .seconds(30)
        while notSent.count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(notSent.count >= 2, "the scheduler never reported two ticks not sent: \(notSent.messages)")
        #expect(try await BeatStatus.read(schedules: [schedule], on: connection).leader == "missing@test")
        #expect(try await BeatStatus.read(schedules: [schedule], on: connection).lastSent[schedule] == nil, "nothing recorded")

        let channel = try await connection.openChannel()
        try await channel.declareQueue(queue, durable: true)
        var delivery: Delivery?
        while delivery == nil, ContinuousClock.now < deadline {
            delivery = try await channel.get(queue: queue, autoAck: true)
            if delivery == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let id = try #require(delivery?.properties.headers?["id"]?.stringValue)
        running.cancel()
        try? await running.value
        let sent = try #require(
            (Int(ledAt) - 5...Int(Date().timeIntervalSince1970) + 1).first {
                TickID.id(schedule: schedule, tick: Date(timeIntervalSince1970: Double($0))) == id
            }, "the tick id is one of this schedule's")
        #expect(Double(sent) > ledAt, "a tick of the time the queue was missing or later, sent once it exists")
        var recorded: Date?
        while recorded == nil, ContinuousClock.now < deadline {
            recorded = try await BeatStatus.read(schedules: [schedule], on: connection).lastSent[schedule]
        }
        #expect(recorded.map { Int($0.timeIntervalSince1970) } ?? 0 >= sent, "recorded once sent")
        try await channel.deleteQueue(queue)
        try await channel.deleteQueue(BeatQueues.state(schedule))
        await connection.close()
    }
}

/// The log messages that contain a given text, kept by a log handler a test gives the code under test.
final class CapturedLog: Sendable {
    private let kept = Mutex<[String]>([])

    var count: Int { kept.withLock { $0.count } }
    var messages: [String] { kept.withLock { $0 } }

    /// A handler that keeps the messages containing `text`, at every level.
    func handler(containing text: String) -> some LogHandler { Handler(log: self, text: text) }

    fileprivate func keep(_ message: String) { kept.withLock { $0.append(message) } }

    private struct Handler: LogHandler {
        let log: CapturedLog
        let text: String
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let message = event.message.description
            if message.contains(text) { log.keep(message) }
        }
    }
}

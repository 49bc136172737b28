import AMQP
@testable import AMQPTasks
import Foundation
import Testing

/// The pure parts of the consumer-timeout work: the bounded memory of recorded deliveries, when custody starts and
/// renews, the `[worker] consumer_timeout` setting, and the custody queue's shape.
@Suite struct CustodyUnitTests {
    let start = ContinuousClock.now

    @Test func recordedKeysAreRememberedUpToTheCapacityOldestForgottenFirst() {
        var keys = RecordedTaskKeys<String>(capacity: 3, maxAge: .seconds(3600))
        for (i, key) in ["a", "b", "c", "d"].enumerated() { keys.insert(key, now: start + .seconds(i)) }
        let now = start + .seconds(10)
        #expect(keys.count == 3)
        #expect(!keys.contains("a", now: now))
        #expect(keys.contains("b", now: now) && keys.contains("c", now: now) && keys.contains("d", now: now))
    }

    @Test func recordedKeysAreForgottenAfterTheirMaximumAge() {
        var keys = RecordedTaskKeys<String>(capacity: 100, maxAge: .seconds(60))
        keys.insert("old", now: start)
        keys.insert("new", now: start + .seconds(50))
        #expect(keys.contains("old", now: start + .seconds(60)))
        #expect(!keys.contains("old", now: start + .seconds(61)))
        // Inserting later drops what has aged out, so the memory does not grow with keys nobody asks about.
        keys.insert("newer", now: start + .seconds(100))
        #expect(keys.count == 2)
        #expect(keys.contains("new", now: start + .seconds(100)))
    }

    @Test func aKeyRecordedAgainIsNotForgottenWithItsOlderRecord() {
        var keys = RecordedTaskKeys<String>(capacity: 2, maxAge: .seconds(3600))
        keys.insert("a", now: start)
        keys.insert("b", now: start + .seconds(1))
        keys.insert("a", now: start + .seconds(2))
        keys.insert("c", now: start + .seconds(3))
        let now = start + .seconds(4)
        // "b" is now the oldest record: it goes, "a" (recorded again) stays.
        #expect(keys.contains("a", now: now) && keys.contains("c", now: now))
        #expect(!keys.contains("b", now: now))
    }

    @Test func recordedKeysStayBoundedOverManyInserts() {
        var keys = RecordedTaskKeys<String>(capacity: 50, maxAge: .seconds(3600))
        for i in 0..<20_000 { keys.insert("k\(i)", now: start + .milliseconds(i)) }
        #expect(keys.count == 50)
        #expect(keys.contains("k19999", now: start + .seconds(30)))
        #expect(!keys.contains("k19949", now: start + .seconds(30)))
    }

    /// A producer that sends one task id over and over (a fixed id used to deduplicate, or a hostile one) records
    /// one key many times: the memory's entries stay bounded by its capacity, not by the number of records within
    /// `maxAge` (6 h by default: at 1,000 tasks/s that was 21.6 million entries).
    @Test func oneKeyRecordedOverAndOverKeepsTheMemoryBounded() {
        var keys = RecordedTaskKeys<String>(capacity: 50, maxAge: .seconds(3600))
        keys.insert("other", now: start)
        for i in 0..<20_000 { keys.insert("same", now: start + .milliseconds(i + 1)) }
        #expect(keys.count == 2)
        #expect(keys.entriesHeld <= 2 * keys.capacity)
        let now = start + .seconds(30)
        #expect(keys.contains("same", now: now) && keys.contains("other", now: now))
    }

    @Test func theMemoryKeyTellsRetriesAndParkedCopiesApart() {
        func received(retries: Int, eta: String?) -> ReceivedMessage {
            var headers: FieldTable = ["id": "t-1", "task": "x", "retries": .int64(Int64(retries))]
            if let eta { headers["eta"] = .string(eta) }
            return ReceivedMessage(body: Data("[]".utf8), properties: BasicProperties(headers: headers), queue: "q")
        }
        let first = DeliveryMemory.key(of: received(retries: 0, eta: nil))
        #expect(first == DeliveryMemory.key(of: received(retries: 0, eta: nil)))
        #expect(first != DeliveryMemory.key(of: received(retries: 1, eta: nil)))
        #expect(first != DeliveryMemory.key(of: received(retries: 0, eta: "2030-01-01T00:00:00Z")))
    }

    @Test func custodyStartsAtHalfTheTimeoutAndRenewsEveryHalf() {
        let schedule = CustodySchedule(consumerTimeout: .seconds(1800))
        #expect(schedule.holdLimit == .seconds(900))
        let delivered = start
        #expect(!schedule.isDue(heldSince: delivered, now: delivered + .seconds(899)))
        #expect(schedule.isDue(heldSince: delivered, now: delivered + .seconds(900)))
        // Each renewal restarts the count from the copy it took.
        let renewed = delivered + .seconds(905)
        #expect(!schedule.isDue(heldSince: renewed, now: delivered + .seconds(1800)))
        #expect(schedule.isDue(heldSince: renewed, now: renewed + .seconds(900)))
        // The watch looks often enough that a step comes well before the broker's timeout: at most a quarter of
        // the half after it is due, and never more than a minute.
        #expect(schedule.lookInterval == .seconds(60))
        #expect(CustodySchedule(consumerTimeout: .seconds(30)).lookInterval == .milliseconds(3750))
        for timeout in [10, 30, 60, 600, 1800, 7200, 86400] {
            let schedule = CustodySchedule(consumerTimeout: .seconds(timeout))
            #expect(schedule.holdLimit + schedule.lookInterval <= schedule.consumerTimeout * 5 / 8)
        }
    }

    @Test func consumerTimeoutSpellings() throws {
        func parsed(_ text: String) -> String {
            switch ConsumerTimeoutSetting.parse(text) {
            case .success(let setting): setting.duration.map { "\($0)" } ?? "off"
            case .failure: "error"
            }
        }
        #expect(parsed("30m") == "1800.0 seconds")
        #expect(parsed("90s") == "90.0 seconds")
        #expect(parsed("2h") == "7200.0 seconds")
        #expect(parsed("1800000ms") == "1800.0 seconds")
        #expect(parsed("off") == "off")
        #expect(parsed("0") == "off")
        #expect(parsed("5s") == "error")
        #expect(parsed("soon") == "error")
        #expect(parsed("-30m") == "error")
    }

    @Test func consumerTimeoutFromTheConfigurationFile() throws {
        let configuration = try TasksConfiguration.parse("[worker]\nconsumer_timeout = \"45m\"\n", file: "t.toml", environment: [:])
        #expect(configuration.worker.consumerTimeout == .seconds(2700))
        let off = try TasksConfiguration.parse("[worker]\nconsumer_timeout = \"off\"\n", file: "t.toml", environment: [:])
        #expect(off.worker.consumerTimeout == nil)
        #expect(try TasksConfiguration.parse("", file: "t.toml", environment: [:]).worker.consumerTimeout == .seconds(1800))
        #expect(throws: (any Error).self) { try TasksConfiguration.parse("[worker]\nconsumer_timeout = \"3s\"\n", file: "t.toml", environment: [:]) }
    }

    @Test func theCustodyQueueDeadLettersItsCopiesBackToTheirTaskQueue() {
        let queue = CustodyQueue(hostname: "w1@host", consumerTimeout: .seconds(1800))
        #expect(queue.name.hasPrefix("amqp-tasks.custody.w1@host."))
        #expect(queue.name != CustodyQueue(hostname: "w1@host", consumerTimeout: .seconds(1800)).name)
        // One worker keeps its queue across reconnections.
        #expect(
            CustodyQueue(hostname: "w1@host", instance: "abc", consumerTimeout: .seconds(60)).name
                == "amqp-tasks.custody.w1@host.abc")
        let arguments = queue.arguments
        #expect(arguments["x-queue-type"]?.stringValue == "quorum")
        #expect(arguments["x-dead-letter-exchange"]?.stringValue == "")
        #expect(arguments["x-dead-letter-strategy"]?.stringValue == "at-least-once")
        #expect(arguments["x-overflow"]?.stringValue == "reject-publish")
        #expect(arguments["x-expires"]?.intValue == 7_200_000)
        let received = ReceivedMessage(
            body: Data("[]".utf8), properties: BasicProperties(headers: ["id": "t-1"], userId: "someone"), queue: "jobs")
        let copy = queue.copy(of: received, queue: "jobs", token: "tok")
        #expect(copy.exchange == CustodyQueue.exchange && copy.routingKey == "jobs" && copy.mandatory)
        #expect(copy.properties.userId == nil)
        #expect(copy.properties.headers?[CustodyQueue.queueHeader]?.stringValue == queue.name)
        #expect(copy.properties.headers?[CustodyQueue.copyHeader]?.stringValue == "tok")
        #expect(copy.properties.headers?["id"]?.stringValue == "t-1")
        // A headers exchange ignores x- headers: a binding on one would match every copy.
        #expect(!CustodyQueue.queueHeader.hasPrefix("x-"))
    }
}

/// `[[queues]] consumer_timeout`: RabbitMQ 3.12's per-queue `x-consumer-timeout`, and custody that follows it.
@Suite struct QueueConsumerTimeoutTests {
    static let text = """
        [worker]
        consumer_timeout = "30m"

        [[queues]]
        name = "reports"
        consumer_timeout = "2h"

        [[queues]]
        name = "quick"
        type = "quorum"
        consumer_timeout = "5m"
        """

    @Test func aQueuesConsumerTimeoutIsDeclaredAsItsArgument() throws {
        let configuration = try TasksConfiguration.parse(Self.text, file: "t.toml", environment: [:])
        #expect(configuration.queue(named: "reports")?.declareArguments["x-consumer-timeout"]?.intValue == 7_200_000)
        #expect(configuration.queue(named: "quick")?.declareArguments["x-consumer-timeout"]?.intValue == 300_000)
    }

    @Test func custodyFollowsTheShorterOfTheWorkersAndTheQueuesTimeout() throws {
        let configuration = try TasksConfiguration.parse(Self.text, file: "t.toml", environment: [:])
        let worker = WorkerConfiguration(configuration: configuration)
        #expect(worker.custodyTimeout(for: "reports") == .seconds(1800))
        #expect(worker.custodyTimeout(for: "quick") == .seconds(300))
        #expect(worker.custodyTimeout(for: "celery") == .seconds(1800))
        let off = try TasksConfiguration.parse(
            Self.text.replacingOccurrences(of: "consumer_timeout = \"30m\"", with: "consumer_timeout = \"off\""),
            file: "t.toml", environment: [:])
        #expect(WorkerConfiguration(configuration: off).custodyTimeout(for: "quick") == nil)
    }

    @Test func aQueuesConsumerTimeoutCannotBeOff() {
        #expect(throws: (any Error).self) {
            try TasksConfiguration.parse("[[queues]]\nname = \"q\"\nconsumer_timeout = \"off\"\n", file: "t.toml", environment: [:])
        }
    }
}

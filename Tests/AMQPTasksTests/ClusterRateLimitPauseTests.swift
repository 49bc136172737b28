import AMQP
@testable import AMQPTasks
import Foundation
import Logging
import Testing

/// A token queue that someone declared with other arguments answers 406 to every declare of ours: the cluster rate
/// limit's connection loop and its token consumer retry it after pauses that grow (as a worker's consumers restart),
/// instead of a warning every second forever. Counted on the attempts the log shows, never on a time window.
extension ClusterRateLimitTests {
    /// A token queue's type as someone else declared it: named, so that a declare of ours against the quorum token
    /// queue surely answers 406. Without it, runs under load saw the token consumer's queue stand after our
    /// declare had returned (one warning, then a consumer at work): RabbitMQ seems to take a declare that leaves the
    /// type out as the existing queue's.
    static let classic: FieldTable = ["x-queue-type": .string("classic")]

    /// Short pauses so that four attempts take well under a second: 20–40 ms, 40–80, 80–160, 160–320.
    static let testPauses = ReconnectPolicy(initialDelay: .milliseconds(40), maxDelay: .seconds(5))

    func limits(of task: String, rate: Double, log: CapturedLog, logging text: String) throws -> ClusterRateLimits {
        try #require(
            ClusterRateLimits(
                tasks: [task: TaskSettings(rateLimit: RateLimit(perSecond: rate), rateLimitScope: .cluster)],
                running: [task], broker: try BrokerSettings(url: Broker.url), identity: "test-\(task)",
                pauses: Self.testPauses, logger: Logger(label: "test.rate") { _ in log.handler(containing: text) }))
    }

    /// The attempt number and pause of each retry warning, in order ("… in 0.031 s (attempt 2)").
    func retries(in log: CapturedLog) -> [(attempt: Int, pause: Double)] {
        log.messages.compactMap { message in
            guard let match = message.firstMatch(of: /in ([0-9.]+) s \(attempt ([0-9]+)\)/),
                let pause = Double(match.1), let attempt = Int(match.2)
            else { return nil }
            return (attempt, pause)
        }
    }

    /// Waits for `condition`, polling; the deadline is only a safety net.
    func waitFor(_ what: @autoclosure () -> String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while try await !condition() {
            if ContinuousClock.now > deadline { throw TestFailure("timed out waiting for \(what())") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The first four retries, 1 to 4, each pause at least the one before and the fourth above the first.
    func expectGrowingPauses(_ log: CapturedLog) async throws {
        try await waitFor("four retries (logged: \(log.messages))") { retries(in: log).contains { $0.attempt == 4 } }
        let all = retries(in: log)
        let fourth = try #require(all.firstIndex { $0.attempt == 4 })
        let four = Array(all[(fourth - 3)...fourth])
        #expect(four.map(\.attempt) == [1, 2, 3, 4], "\(log.messages)")
        let pauses = four.map(\.pause)
        #expect(zip(pauses, pauses.dropFirst()).allSatisfy { $0 <= $1 }, "the pauses grow: \(pauses)")
        #expect(pauses[3] >= 4 * pauses[0], "the fourth at least four times the first: \(pauses)")
        #expect(log.messages.contains { $0.contains("406") || $0.contains("PRECONDITION_FAILED") }, "\(log.messages)")
    }

    @Test func aTokenQueueDeclaredWithOtherArgumentsIsRetriedAfterGrowingPauses() async throws {
        let task = uniqueTask()
        let queue = ClusterRateLimits.queue(task)
        let connection = try await Connection.open(url: Broker.url)
        _ = try await connection.openChannel().declareQueue(queue, durable: true, arguments: Self.classic)
        let log = CapturedLog()
        let limits = try limits(of: task, rate: Self.rate, log: log, logging: "trying again in")
        let running = Task { await limits.run() }
        try await expectGrowingPauses(log)
        running.cancel()
        await running.value
        _ = try await connection.openChannel().deleteQueue(queue)
        await connection.close()
    }

    @Test func aTokenConsumerWhoseQueueIsDeclaredAgainWithOtherArgumentsRetriesAfterGrowingPauses() async throws {
        let task = uniqueTask()
        let queue = ClusterRateLimits.queue(task)
        let log = CapturedLog()
        // One token an hour (the first at once): a token published while the test has deleted the queue is
        // returned unroutable, which ends the refiller and with it this connection and its token consumer.
        let limits = try limits(of: task, rate: 1.0 / 3600, log: log, logging: "opening it again in")
        let running = Task { await limits.run() }
        let connection = try await Connection.open(url: Broker.url)
        try await waitFor("the token consumer") {
            let channel = try await connection.openChannel()
            defer { Task { try? await channel.close() } }
            return (try? await channel.inspectQueue(queue).consumerCount) ?? 0 >= 1
        }
        // Replace the token queue by a classic one. The token consumer may declare it again between our delete and
        // our declare (ours then answers 406, as it names the other type): until ours is the one that stands.
        try await waitFor("the token queue replaced") {
            let channel = try await connection.openChannel()
            _ = try await channel.deleteQueue(queue)
            do {
                _ = try await channel.declareQueue(queue, durable: true, arguments: Self.classic)
                try? await channel.close()
                return true
            } catch {
                return false
            }
        }
        try await expectGrowingPauses(log)
        running.cancel()
        await running.value
        _ = try await connection.openChannel().deleteQueue(queue)
        await connection.close()
    }
}

@testable import AMQPTasks
import Testing

/// The client's reconnect pauses without a broker: exponential growth, the ceiling, and jitter in the upper half.
@Suite struct ReconnectPolicyTests {
    @Test func backoffDoublesFromTheInitialDelayUpToTheMaximum() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(200), maxDelay: .seconds(5))
        let backoffs = (1...10).map { policy.backoff(beforeAttempt: $0) }
        #expect(backoffs[0] == .milliseconds(200))
        #expect(backoffs[1] == .milliseconds(400))
        #expect(backoffs[3] == .milliseconds(1_600))
        #expect(backoffs[4] == .milliseconds(3_200))
        #expect(backoffs[5] == .seconds(5), "capped at maxDelay")
        #expect(backoffs[9] == .seconds(5))
        #expect(policy.backoff(beforeAttempt: 0) == .milliseconds(200), "attempt 0 counts as the first")
        #expect(policy.backoff(beforeAttempt: Int.max) == .seconds(5), "no trap for any attempt count")
    }

    @Test func jitterDrawsFromTheUpperHalfOfTheBackoff() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(200), maxDelay: .seconds(5))
        var random = SeededRandom(seed: 1)
        for attempt in 1...8 {
            let backoff = policy.backoff(beforeAttempt: attempt)
            let draws = (0..<2_000).map { _ in policy.delay(beforeAttempt: attempt, using: &random) }
            #expect(draws.allSatisfy { $0 >= backoff / 2 && $0 <= backoff }, "within \(backoff / 2)…\(backoff)")
            #expect(draws.contains { $0 < backoff * 0.55 }, "some near half of \(backoff)")
            #expect(draws.contains { $0 > backoff * 0.95 }, "some near \(backoff)")
        }
    }

    @Test func theDefaultsAreTheDocumentedOnes() {
        let policy = ReconnectPolicy()
        #expect(policy.sendRetryWindow == .seconds(60))
        #expect(policy.initialDelay == .milliseconds(200))
        #expect(policy.maxDelay == .seconds(5))
    }
}

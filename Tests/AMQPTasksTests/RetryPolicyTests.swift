@testable import AMQPTasks
import Testing

/// Retry delays without a broker: exponential growth, the ceiling, and full jitter within its range.
@Suite struct RetryPolicyTests {
    @Test func backoffDoublesFromTheBaseDelayUpToTheMaximum() {
        let policy = RetryPolicy(baseDelay: .seconds(1), backoff: true, maxDelay: .seconds(600), jitter: false)
        let delays = (0..<12).map { policy.delay(afterRetries: $0) }
        #expect(delays[0] == .seconds(1))
        #expect(delays[1] == .seconds(2))
        #expect(delays[5] == .seconds(32))
        #expect(delays[9] == .seconds(512))
        #expect(delays[10] == .seconds(600), "capped at maxDelay")
        #expect(delays[11] == .seconds(600))
        for (earlier, later) in zip(delays, delays.dropFirst()) { #expect(later >= earlier, "never shrinks") }
    }

    @Test func withoutBackoffEveryDelayIsTheBaseDelayWithinTheMaximum() {
        let fixed = RetryPolicy(baseDelay: .seconds(3), backoff: false, jitter: false)
        #expect((0..<20).allSatisfy { fixed.delay(afterRetries: $0) == .seconds(3) })
        let capped = RetryPolicy(baseDelay: .seconds(30), backoff: false, maxDelay: .seconds(10), jitter: false)
        #expect(capped.delay(afterRetries: 0) == .seconds(10))
    }

    @Test func anyRetryCountOrBaseDelayGivesABoundedDelayWithoutTrapping() {
        let policy = RetryPolicy(baseDelay: .milliseconds(500), maxDelay: .seconds(60), jitter: false)
        #expect(policy.delay(afterRetries: Int.max) == .seconds(60))
        #expect(policy.delay(afterRetries: -5) == .milliseconds(500), "a negative count is the first retry")
        let huge = RetryPolicy(baseDelay: .seconds(Int64.max / 4), maxDelay: .seconds(60), jitter: false)
        #expect(huge.delay(afterRetries: 40) == .seconds(60))
    }

    @Test func fullJitterDrawsBetweenZeroAndTheComputedDelay() {
        let policy = RetryPolicy(baseDelay: .seconds(1), maxDelay: .seconds(600), jitter: true)
        var random = SeededRandom(seed: 42)
        for retries in 0..<12 {
            let computed = policy.computedDelay(afterRetries: retries)
            let draws = (0..<2_000).map { _ in policy.delay(afterRetries: retries, using: &random) }
            #expect(draws.allSatisfy { $0 >= .zero && $0 <= computed }, "within 0…\(computed)")
            // Spread over the whole range, not stuck at one end: the draws reach both outer tenths.
            #expect(draws.contains { $0 < computed / 10 }, "some near zero after \(retries) retries")
            #expect(draws.contains { $0 > computed * 0.9 }, "some near \(computed) after \(retries) retries")
        }
    }

    @Test func theSameRandomSourceGivesTheSameDelays() {
        let policy = RetryPolicy()
        var first = SeededRandom(seed: 7)
        var second = SeededRandom(seed: 7)
        let a = (0..<50).map { policy.delay(afterRetries: $0 % 8, using: &first) }
        let b = (0..<50).map { policy.delay(afterRetries: $0 % 8, using: &second) }
        #expect(a == b)
    }
}

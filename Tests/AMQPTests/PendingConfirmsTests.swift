import Testing

@testable import AMQP

/// Publisher-confirm bookkeeping (`PendingConfirms`), without a broker: the broker's `basic.ack` / `basic.nack`
/// (single or `multiple`, in or out of order) and `basic.return` resolve exactly the publishes they name, once.
@Suite struct PendingConfirmsTests {
    /// What each publish was told, by sequence number.
    final class Outcomes {
        var results: [UInt64: [String]] = [:]
        func record(_ sequence: UInt64) -> (Result<Void, AMQPError>) -> Void {
            { result in
                let text: String
                switch result {
                case .success: text = "ack"
                case .failure(let error): text = error.kind == .unroutable ? "returned" : error.kind.rawValue
                }
                self.results[sequence, default: []].append(text)
            }
        }
        func of(_ sequence: UInt64) -> [String] { results[sequence] ?? [] }
    }

    static let nack = AMQPError(.nacked, operation: "basic.publish", message: "nacked")

    static func publishes(
        _ sequences: ClosedRange<UInt64>, mandatory: Bool = false, outcomes: Outcomes
    ) -> PendingConfirms {
        var pending = PendingConfirms()
        for sequence in sequences {
            pending.append(
                PendingConfirm(
                    exchange: "x", routingKey: "k\(sequence)", mandatory: mandatory, returned: nil,
                    completion: outcomes.record(sequence)),
                sequence: sequence)
        }
        return pending
    }

    @Test func aMultipleAckResolvesEveryPublishUpToItsTag() {
        let outcomes = Outcomes()
        var pending = Self.publishes(1...5, outcomes: outcomes)
        pending.resolve(upTo: 3, multiple: true, nack: nil)
        #expect((1...3).allSatisfy { outcomes.of($0) == ["ack"] })
        #expect(outcomes.of(4).isEmpty && outcomes.of(5).isEmpty)
        #expect(!pending.isEmpty)
        pending.resolve(upTo: 5, multiple: true, nack: nil)
        #expect(outcomes.of(4) == ["ack"] && outcomes.of(5) == ["ack"])
        #expect(pending.isEmpty)
    }

    @Test func aNackFailsOnlyThePublishesItNames() {
        let outcomes = Outcomes()
        var pending = Self.publishes(1...4, outcomes: outcomes)
        pending.resolve(upTo: 2, multiple: false, nack: Self.nack)
        pending.resolve(upTo: 4, multiple: true, nack: nil)
        #expect(outcomes.of(2) == ["nacked"])
        #expect(outcomes.of(1) == ["ack"] && outcomes.of(3) == ["ack"] && outcomes.of(4) == ["ack"])
    }

    @Test func outOfOrderConfirmsResolveEachOnce() {
        let outcomes = Outcomes()
        var pending = Self.publishes(1...4, outcomes: outcomes)
        pending.resolve(upTo: 3, multiple: false, nack: nil)
        pending.resolve(upTo: 1, multiple: false, nack: nil)
        pending.resolve(upTo: 4, multiple: true, nack: Self.nack)  // 2 and 4 are still waiting
        pending.resolve(upTo: 3, multiple: false, nack: nil)  // again: nothing
        #expect(outcomes.of(1) == ["ack"] && outcomes.of(3) == ["ack"])
        #expect(outcomes.of(2) == ["nacked"] && outcomes.of(4) == ["nacked"])
        #expect(pending.isEmpty)
    }

    /// A `multiple` ack whose tag is below publishes already confirmed one by one made an invalid range (a crash).
    @Test func aMultipleAckBelowWhatIsConfirmedAlreadyChangesNothing() {
        let outcomes = Outcomes()
        var pending = Self.publishes(1...3, outcomes: outcomes)
        pending.resolve(upTo: 1, multiple: false, nack: nil)
        pending.resolve(upTo: 2, multiple: false, nack: nil)
        pending.resolve(upTo: 1, multiple: true, nack: nil)
        #expect(outcomes.of(1) == ["ack"] && outcomes.of(2) == ["ack"] && outcomes.of(3).isEmpty)
        pending.resolve(upTo: 3, multiple: true, nack: nil)
        #expect(outcomes.of(3) == ["ack"])
    }

    @Test func tagsNobodyWaitsForAreIgnored() {
        let outcomes = Outcomes()
        var pending = Self.publishes(5...6, outcomes: outcomes)
        pending.resolve(upTo: 4, multiple: true, nack: nil)
        pending.resolve(upTo: 9, multiple: true, nack: nil)
        #expect(outcomes.results.isEmpty)
    }

    @Test func aReturnedMandatoryPublishFailsWhenItsConfirmArrives() {
        let outcomes = Outcomes()
        var pending = Self.publishes(1...3, mandatory: true, outcomes: outcomes)
        let returned = AMQPError(.unroutable, operation: "basic.publish", message: "NO_ROUTE", replyCode: .noRoute)
        let matched = pending.markReturned(exchange: "x", routingKey: "k2", error: returned)
        let unmatched = pending.markReturned(exchange: "x", routingKey: "nobody", error: returned)
        #expect(matched)
        #expect(!unmatched)
        #expect(outcomes.results.isEmpty, "a return is reported with the confirm that follows it")
        pending.resolve(upTo: 3, multiple: true, nack: nil)
        #expect(outcomes.of(1) == ["ack"] && outcomes.of(2) == ["returned"] && outcomes.of(3) == ["ack"])
    }

    @Test func failAllFailsEveryWaitingPublishOnce() {
        let outcomes = Outcomes()
        var pending = Self.publishes(1...4, outcomes: outcomes)
        pending.resolve(upTo: 2, multiple: false, nack: nil)
        pending.failAll(AMQPError(.closed, operation: "basic.publish", message: "closed"))
        pending.failAll(AMQPError(.closed, operation: "basic.publish", message: "closed"))
        #expect(outcomes.of(2) == ["ack"])
        #expect(outcomes.of(1) == ["closed"] && outcomes.of(3) == ["closed"] && outcomes.of(4) == ["closed"])
        #expect(pending.isEmpty)
    }

    @Test func manyConfirmsDropTheirPrefixAndKeepCounting() {
        let outcomes = Outcomes()
        var pending = Self.publishes(1...10_000, outcomes: outcomes)
        for tag in stride(from: 1, through: 9_999, by: 1) { pending.resolve(upTo: UInt64(tag), multiple: false, nack: nil) }
        #expect(!pending.isEmpty)
        pending.append(
            PendingConfirm(exchange: "x", routingKey: "k", mandatory: false, returned: nil, completion: outcomes.record(10_001)),
            sequence: 10_001)
        pending.resolve(upTo: 10_001, multiple: true, nack: nil)
        #expect(outcomes.results.count == 10_001)
        #expect(outcomes.results.values.allSatisfy { $0 == ["ack"] })
        #expect(pending.isEmpty)
    }
}

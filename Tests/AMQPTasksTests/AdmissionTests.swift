import AMQP
import AMQPTasks
import Foundation
import Testing

/// `TaskMessage.admission(now:configuredTimeLimit:)` and the `timelimit` header, in `Duration`s: what a worker
/// decides from a task's headers and the time alone, and what a client writes. Pure: no broker needed.
@Suite struct AdmissionTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func message(etaIn seconds: Double? = nil, hard: Duration? = nil) -> TaskMessage {
        var message = TaskMessage(name: "demo.add")
        message.eta = seconds.map { CeleryTime.format(now.addingTimeInterval($0)) }
        message.timeLimit.hard = hard
        return message
    }

    @Test func anETAAheadWaitsInTheDelayLevelsForTheWholeSecondsLeftRoundedUp() throws {
        guard case .wait(let remaining, let step) = Self.message(etaIn: 10.2).admission(now: Self.now) else {
            Issue.record("an eta 10.2 s ahead should wait")
            return
        }
        #expect(abs((remaining - .milliseconds(10200)).secondsValue) < 0.001, "remaining: \(remaining)")
        #expect(step == .seconds(11), "rounded up: it never comes back before its eta")
        guard case .wait(_, let short) = Self.message(etaIn: 1.5).admission(now: Self.now) else {
            Issue.record("an eta 1.5 s ahead should wait")
            return
        }
        #expect(short == .seconds(2))
    }

    @Test func anETAAtMostOneSecondAheadIsHeldNeverRunEarly() {
        #expect(TaskMessage.etaHoldLimit == .seconds(1))
        for ahead in [0.4, 1.0] {
            guard case .hold(let remaining) = Self.message(etaIn: ahead).admission(now: Self.now) else {
                Issue.record("an eta \(ahead) s ahead should be held")
                continue
            }
            #expect(abs(remaining.secondsValue - ahead) < 0.001, "remaining: \(remaining)")
        }
        #expect(Self.message(etaIn: 0.001).admission(now: Self.now) != .run(timeLimit: nil), "1 ms early is early")
    }

    @Test func anETAInThePastRunsNow() {
        #expect(Self.message(etaIn: 0).admission(now: Self.now) == .run(timeLimit: nil))
        #expect(Self.message(etaIn: -60).admission(now: Self.now) == .run(timeLimit: nil))
    }

    @Test func theMessagesHardLimitWinsOverTheConfiguredOneAndZeroMeansNone() {
        let configured = Duration.seconds(30)
        #expect(Self.message().admission(now: Self.now, configuredTimeLimit: configured) == .run(timeLimit: configured))
        #expect(
            Self.message(hard: .milliseconds(2500)).admission(now: Self.now, configuredTimeLimit: configured)
                == .run(timeLimit: .milliseconds(2500)))
        #expect(Self.message(hard: .zero).admission(now: Self.now, configuredTimeLimit: configured) == .run(timeLimit: nil))
        #expect(Self.message().admission(now: Self.now, configuredTimeLimit: .seconds(-1)) == .run(timeLimit: nil))
    }

    @Test func timeLimitsGoOnTheWireInSecondsAndComeBack() throws {
        var message = TaskMessage(name: "demo.add")
        message.timeLimit = .init(hard: .seconds(30), soft: .milliseconds(2500))
        let (properties, body) = message.encode()
        #expect(properties.headers?["timelimit"] == .array([.int32(30), .double(2.5)]))
        let again = try TaskMessage.decode(properties: properties, body: body)
        #expect(again.timeLimit == message.timeLimit)
        message.timeLimit = .init()
        #expect(message.encode().properties.headers?["timelimit"] == .array([.void, .void]))
    }
}

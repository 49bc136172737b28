import AMQP
@testable import AMQPTasks
import Foundation
import Testing

/// A chord member the worker rejects before it becomes a task (it does not decode) fails its chord at once, as a
/// failed member does, instead of leaving the chord to wait for its expiry (7 days).
@Suite struct ChordRejectionTests {
    @Test func aMemberRejectedAtDecodeFailsItsChordNowAndRunsTheErrback() async throws {
        let queue = uniqueQueue("chordreject")
        let parked = uniqueQueue("chordreject-parked")
        let setup = try await Connection.open(url: Broker.url)
        let channel = try await setup.openChannel()
        _ = try await channel.declareQueue(parked, durable: true)
        let log = RunLog()
        let worker = try await RunningWorker.start(queues: [queue], concurrency: 2, register: CanvasTests.register(log))
        let client = try await TaskClient.connect(url: Broker.url)
        // Member 2 goes to a queue nobody consumes, so the test can spoil it as a sender with a bug would.
        var members = (0..<4).map { TaskSignature("demo.add", args: [.int($0), 0]) }
        members[2].options["queue"] = .string(parked)
        let chord = try await client.send(
            chord: members, callback: TaskSignature("test.collect"), errbacks: [TaskSignature("test.errback")],
            options: SendOptions(queue: queue))
        var member: Delivery?
        for _ in 0..<600 where member == nil {
            member = try await channel.get(queue: parked, autoAck: true)
            if member == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let original = try #require(member)
        guard case .array(var parts) = try JSONValue.parse(original.body) else {
            throw TestFailure("the member's body is not a JSON list")
        }
        #expect(parts.count == 3 && parts[2]["chord"] != nil, "the member carries its chord in the embed")
        parts[0] = "not a list"  // bad args: the message no longer decodes
        try await channel.publish(
            OutgoingMessage(body: JSONValue.array(parts).jsonData(), routingKey: queue, properties: original.properties))

        let result = try await client.result(for: chord.callbackId, timeout: .seconds(30))
        #expect(result.status == .failure)
        #expect(result.failure?.type == "ChordError")
        #expect(result.failure?.message.contains(chord.group.taskIds[2]) == true, "\(result.failure?.message ?? "")")
        for _ in 0..<300 where await log.count("errback") == 0 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(await log.count("errback") == 1, "the chord's errback ran")
        #expect(await log.count("collect") == 0, "the callback never ran")
        try await worker.stop()
        await client.close()
        _ = try await channel.deleteQueue(parked)
        await setup.close()
        try await CanvasTests.deleteQueues([queue, "\(queue).dead"])
    }

    @Test func onlyAChordMembersBodyIsTakenForOne() {
        #expect(ChordStage.embedCarriesChord(Data(#"[1, {}, {"chord": {"task": "cb"}}]"#.utf8)))
        #expect(!ChordStage.embedCarriesChord(Data(#"[[], {}, {"chord": null}]"#.utf8)), "a plain group member")
        #expect(!ChordStage.embedCarriesChord(Data("not json".utf8)))
        #expect(!ChordStage.embedCarriesChord(Data(#"{"args": []}"#.utf8)))
    }
}

import AMQP
import AMQPTasks
import Foundation
import Testing

/// Priorities on the real broker: `SendOptions.priority` and a queue declared with `max_priority` together, with
/// the worker's prefetch of 1, so a high-priority task sent behind a backlog starts next.
@Suite struct PriorityTests {
    /// The order in which a worker ran its tasks (their first argument).
    actor RunOrder {
        private(set) var order: [Int] = []
        func ran(_ value: Int) { order.append(value) }
    }

    @Test func aHighPriorityTaskSentBehindABacklogOfLowOnesStartsNext() async throws {
        let queue = uniqueQueue("priority")
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        let definition = QueueDefinition(name: queue, maxPriority: 10)
        try await channel.declareQueue(queue, durable: true, arguments: definition.declareArguments)
        let order = RunOrder()
        let gate = Gate()
        let worker = try await RunningWorker.start(
            queues: [queue],
            register: { registry in
                try registry.register("priority.run") { context in
                    let value = context.message.args.first?.intValue ?? -1
                    if value == 0 { await gate.wait() }  // the worker is busy while the backlog builds up
                    await order.ran(value)
                    return .null
                }
            })
        let client = try await TaskClient.connect(url: Broker.url)
        var low = SendOptions(queue: queue)
        low.priority = 1
        low.ignoreResult = true
        for index in 0..<50 { try await client.send("priority.run", args: [.int(index)], options: low) }
        try await gate.waitForWaiters(1)
        #expect(try await channel.inspectQueue(queue).messageCount == 49, "one task held (prefetch 1), the rest queued")
        var high = low
        high.priority = 9
        try await client.send("priority.run", args: [999], options: high)
        await gate.open()
        for _ in 0..<1200 where await order.order.count < 51 { try await Task.sleep(for: .milliseconds(50)) }
        let ran = await order.order
        #expect(ran.count == 51, "every task ran once: \(ran)")
        // With prefetch 1, only the task the worker held when the high one arrived runs before it.
        #expect(ran.prefix(2).contains(999), "the high-priority task ran at position \(ran.firstIndex(of: 999) ?? -1)")
        #expect(ran.filter { $0 != 999 } == Array(0..<50), "low-priority tasks run in the order sent")
        try await worker.stop()
        try await channel.deleteQueue(queue)
        await client.close()
        await connection.close()
    }

    @Test func maxPriorityOnAQuorumQueueIsAConfigurationError() throws {
        let text = """
            [[queues]]
            name = "reports"
            type = "quorum"
            max_priority = 10
            """
        let error = #expect(throws: ConfigErrors.self) {
            try TasksConfiguration.parse(text, file: "amqp-tasks.toml", environment: [:])
        }
        let description = "\(error.map { "\($0)" } ?? "")"
        #expect(description.contains("amqp-tasks.toml:4"), "\(description)")
        #expect(description.contains("max_priority"), "\(description)")
        #expect(description.contains("classic"), "\(description)")
    }
}

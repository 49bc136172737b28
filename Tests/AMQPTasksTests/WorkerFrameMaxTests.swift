import AMQP
import AMQPTasks
import Foundation
import Logging
import Testing

/// A worker whose broker URL asks for a small `frame_max` still runs a task whose headers are larger than it, sent
/// by a client at the broker's frame size: a consuming connection takes the broker's frame size, and says so.
/// Before, rabbitmq-c dropped the worker's connection at the delivery (a frame larger than its frame_max), the
/// broker redelivered the task to the reconnected worker, which dropped it again: the task never ran.
@Suite struct WorkerFrameMaxTests {
    @Test func aWorkerAskingForASmallFrameMaxRunsATaskWithLargerHeaders() async throws {
        let queue = uniqueQueue("framemax")
        let worker = try await RunningWorker.start(queues: [queue], url: Broker.url + "?frame_max=8192")
        let client = try await TaskClient.connect(url: Broker.url)
        var options = SendOptions(queue: queue)
        options.headers = ["big": .string(String(repeating: "h", count: 20_000))]  // 20 KB, in one content header
        let id = try await client.send("demo.add", args: [2, 3], options: options)
        #expect(try await client.value(for: id, timeout: .seconds(30)) == 5)
        await client.close()
        try await worker.stop()
    }

    @Test func aConsumingConnectionSaysWhichFrameMaxItUsesInsteadOfTheURLs() async throws {
        let log = CapturedLog()
        let logger = Logger(label: "test.frame-max") { _ in log.handler(containing: "frame_max") }
        let configuration = try ConnectionConfiguration(url: Broker.url + "?frame_max=8192")

        let consuming = try await Connection.open(configuration.consuming, logger: logger)
        await consuming.close()
        #expect(log.count == 1, "one warning: \(log.messages)")
        let warning = log.messages.first ?? ""
        #expect(warning.contains("frame_max=8192"), "names the option and the value asked for: \(warning)")
        #expect(warning.contains("131072"), "and the broker's frame size it uses instead: \(warning)")

        let publishing = try await Connection.open(configuration, logger: logger)
        await publishing.close()
        #expect(log.count == 1, "a connection that only publishes keeps frame_max=8192 and says nothing")
    }
}

@testable import AMQPTasks
import Foundation
import Logging
import Testing

/// A task's logger (`TaskContext.logger`): every line carries the task's `task_id` and `task` beside the worker
/// handler's metadata, what a handler sets on it is kept, a call's own metadata wins, and the level is the worker's.
@Suite struct TaskLogHandlerTests {
    let captured = JSONLogHandlerTests.Captured()

    func context(level: Logger.Level = .info) -> TaskContext {
        var worker = Logger(label: "amqp-tasks.worker") { label in
            JSONLogHandler(label: label, output: captured.output, metadata: ["worker": "w1@host"], metadataProvider: nil)
        }
        worker.logLevel = level
        return TaskContext(message: TaskMessage(id: "3f2a", name: "demo.add"), logger: worker)
    }

    func lines() throws -> [[String: JSONValue]] {
        try captured.all.map { try #require(try JSONValue.parse($0.dropLast()).objectValue) }
    }

    @Test func eachLineCarriesTheTaskAndTheWorkersMetadata() throws {
        let task = context()
        task.logger.info("received")
        let line = try #require(try lines().first)
        #expect(line["task_id"] == "3f2a" && line["task"] == "demo.add" && line["worker"] == "w1@host")
        #expect(line["message"] == "received")
        #expect(task.logger[metadataKey: "task_id"] == "3f2a" && task.logger[metadataKey: "worker"] == "w1@host")
        #expect(task.logger.handler.metadata["task"] == "demo.add" && task.logger.handler.metadata["worker"] == "w1@host")
    }

    @Test func metadataSetOnTheTaskLoggerIsKeptAndACallsOwnWins() throws {
        var logger = context().logger
        logger[metadataKey: "attempt"] = "2"
        logger.warning("slow", metadata: ["task": "renamed"])
        logger[metadataKey: "task_id"] = nil
        logger.error("gone")
        let all = try lines()
        try #require(all.count == 2)
        #expect(all[0]["attempt"] == "2" && all[0]["task"] == "renamed" && all[0]["task_id"] == "3f2a")
        #expect(all[1]["task_id"] == nil && all[1]["task"] == "demo.add" && all[1]["attempt"] == "2")
    }

    @Test func theWorkersLevelFiltersTheTasksLines() throws {
        var logger = context(level: .warning).logger
        logger.info("not written")
        #expect(logger.logLevel == .warning)
        logger.logLevel = .debug
        logger.debug("written")
        let all = try lines()
        #expect(all.map { $0["message"] } == ["written"])
    }
}

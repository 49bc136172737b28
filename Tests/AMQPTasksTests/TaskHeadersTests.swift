@testable import AMQP
@testable import AMQPTasks
import Foundation
import Testing

/// `TaskMessage.decode` reads the headers it models in one pass (`TaskHeaders`): the first of a repeated name
/// counts, as `FieldTable`'s subscript reads it; the others stay, in their order, as extra headers; `lang` is dropped.
@Suite struct TaskHeadersTests {
    func decode(_ headers: FieldTable) throws -> TaskMessage {
        try TaskMessage.decode(properties: BasicProperties(headers: headers), body: Data("[[], {}, {}]".utf8))
    }

    @Test func everyModelledHeaderIsReadAndTheOthersStayInOrder() throws {
        let message = try decode([
            "x-first": "1", "lang": "py", "task": "demo.add", "id": "t-1", "shadow": "alias", "x-second": "2",
            "eta": "2030-01-01T00:00:00+00:00", "expires": "2030-01-02T00:00:00+00:00", "group": "g-1",
            "group_index": .int64(3), "retries": .int64(2), "timelimit": .array([.double(10), .double(5)]),
            "root_id": "r-1", "parent_id": "p-1", "argsrepr": "()", "kwargsrepr": "{}", "origin": "gen1@host",
            "ignore_result": .bool(true), "x-third": "3",
        ])
        #expect(message.id == "t-1" && message.name == "demo.add" && message.shadow == "alias")
        #expect(message.eta == "2030-01-01T00:00:00+00:00" && message.expires == "2030-01-02T00:00:00+00:00")
        #expect(message.group == "g-1" && message.groupIndex == 3 && message.retries == 2)
        #expect(message.timeLimit.hard == .seconds(10) && message.timeLimit.soft == .seconds(5))
        #expect(message.rootId == "r-1" && message.parentId == "p-1" && message.origin == "gen1@host")
        #expect(message.argsRepr == "()" && message.kwargsRepr == "{}" && message.ignoreResult == true)
        #expect(message.extraHeaders.keys == ["x-first", "x-second", "x-third"])
    }

    @Test func theFirstOfARepeatedHeaderCounts() throws {
        let message = try decode(
            FieldTable([
                (key: "task", value: "demo.add"), (key: "id", value: "t-1"), (key: "retries", value: .int64(1)),
                (key: "task", value: "demo.other"), (key: "retries", value: .int64(7)), (key: "id", value: "t-2"),
            ]))
        #expect(message.name == "demo.add" && message.id == "t-1" && message.retries == 1)
        #expect(message.extraHeaders.isEmpty)
    }

    @Test func aCompressionHeaderIsRefusedAndAnEmptyOneIsKept() throws {
        #expect(throws: TaskMessageError.self) {
            try decode(["task": "demo.add", "id": "t-1", "compression": "application/x-gzip"])
        }
        let message = try decode(["task": "demo.add", "id": "t-1", "compression": .void])
        #expect(message.extraHeaders.keys == ["compression"])
    }
}

import AMQP
import AMQPTasks
import Foundation
import Testing

/// The captures of real Celery 5.7 messages in `Tests/Fixtures/celery` (made by its `make-captures`) decode and
/// re-encode unchanged. They fail (never skip) when a capture is missing or holds a header type we do not know.
@Suite struct CeleryCaptureCodecTests {
    static let captures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/celery")

    static func load(_ name: String) throws -> [String: Any] {
        let file = captures.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw TestFailure("Celery capture \(file.path) is missing: regenerate it with Tests/Fixtures/celery/make-captures")
        }
        let data = try Data(contentsOf: file)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A header value with the AMQP type the capture recorded for it (the type names of `FieldValue`'s cases).
    static func fieldValue(_ value: Any, type: Any) throws -> FieldValue {
        if let table = type as? [String: Any], let inner = table["table"] as? [String: Any] {
            let object = value as? [String: Any] ?? [:]
            return .table(FieldTable(try inner.keys.sorted().map { (key: $0, value: try fieldValue(object[$0] as Any, type: inner[$0]!)) }))
        }
        if let list = type as? [Any], (list.first as? String) == "array" {
            let values = value as? [Any] ?? []
            return .array(try zip(values, list.dropFirst()).map { try fieldValue($0, type: $1) })
        }
        switch type as? String {
        case "longstr": return .string(value as! String)
        case "int32": return .int32(Int32((value as! NSNumber).intValue))
        case "int64": return .int64(Int64((value as! NSNumber).intValue))
        case "bool": return .bool((value as! NSNumber).boolValue)
        case "double": return .double((value as! NSNumber).doubleValue)
        case "void": return .void
        default: throw TestFailure("a capture holds a header of type \(type), which this test does not read yet")
        }
    }

    static func properties(of capture: [String: Any]) throws -> BasicProperties {
        let p = capture["properties"] as! [String: Any]
        let headers = p["headers"] as? [String: Any] ?? [:]
        let types = capture["header_amqp_types"] as? [String: Any] ?? [:]
        var table = FieldTable()
        for key in headers.keys.sorted() {
            guard let type = types[key] else { throw TestFailure("the capture gives no header_amqp_types for \(key)") }
            table[key] = try fieldValue(headers[key] as Any, type: type)
        }
        return BasicProperties(
            contentType: p["content_type"] as? String, contentEncoding: p["content_encoding"] as? String,
            headers: table, deliveryMode: (p["delivery_mode"] as? NSNumber)?.uint8Value,
            priority: (p["priority"] as? NSNumber)?.uint8Value, correlationId: p["correlation_id"] as? String,
            replyTo: p["reply_to"] as? String, expiration: p["expiration"] as? String)
    }

    static func sortedHeaders(_ table: FieldTable?) -> [String: FieldValue] {
        Dictionary(uniqueKeysWithValues: (table ?? [:]).map { ($0.key, $0.value) })
    }

    @Test func everyCapturedTaskMessageDecodesAndReencodesUnchanged() throws {
        let messages = try #require(try Self.load("task_messages.json")["messages"] as? [[String: Any]])
        #expect(messages.count >= 6)
        for capture in messages {
            let properties = try Self.properties(of: capture)
            let body = Data((capture["body_raw"] as! String).utf8)
            let message = try TaskMessage.decode(properties: properties, body: body)
            let (encodedProperties, encodedBody) = message.encode()
            #expect(Self.sortedHeaders(encodedProperties.headers) == Self.sortedHeaders(properties.headers), "\(message.name) \(message.id)")
            #expect(try JSONValue.parse(encodedBody) == JSONValue.parse(body))
            #expect(encodedProperties.correlationId == properties.correlationId)
            #expect(encodedProperties.replyTo == properties.replyTo)
            #expect(encodedProperties.priority == properties.priority)
            #expect(encodedProperties.expiration == properties.expiration)
            #expect(encodedProperties.deliveryMode == 2)
            #expect(encodedProperties.contentType == "application/json")
        }
    }

    @Test func capturedOptionsAreReadIntoTheirFields() throws {
        let messages = try #require(try Self.load("task_messages.json")["messages"] as? [[String: Any]])
        let decoded = try messages.map {
            try TaskMessage.decode(properties: try Self.properties(of: $0), body: Data(($0["body_raw"] as! String).utf8))
        }
        let plain = try #require(decoded.first { $0.argsRepr == "(2, 3)" && $0.eta == nil })
        #expect(plain.name == "tasks.add")
        #expect(plain.args == [2, 3])
        #expect(plain.kwargs == ["z": 1])
        #expect(plain.retries == 0)
        #expect(plain.ignoreResult == nil)
        #expect(plain.rootId == plain.id)
        let countdown = try #require(decoded.first { $0.eta != nil })
        #expect(countdown.etaDate != nil)
        #expect(countdown.expiresDate != nil)
        #expect(countdown.priority == 5)
        #expect(countdown.expiration == "60000")
        let limited = try #require(decoded.first { $0.timeLimit.hard != nil })
        #expect(limited.timeLimit == .init(hard: .seconds(30), soft: .seconds(20)))
        #expect(limited.retries == 2)
        #expect(limited.ignoreResult == true)
        #expect(limited.extraHeaders["x-custom"] == "hello")
        let linked = try #require(decoded.first { $0.embed.callbacks != nil })
        #expect(linked.embed.callbacks?.first?["task"] == "tasks.add")
        #expect(linked.embed.errbacks?.first?["immutable"] == true)
        let chained = try #require(decoded.first { $0.embed.chain != nil })
        #expect(chained.embed.chain?.count == 2)
        #expect(chained.embed.chain?.last?["args"] == [3], "the next task of a chain is the last element")
        let grouped = decoded.filter { $0.group != nil }
        #expect(grouped.map(\.groupIndex).sorted { ($0 ?? 0) < ($1 ?? 0) } == [0, 1])
    }

    @Test func everyCapturedResultMessageDecodesAndReencodesUnchanged() throws {
        let messages = try #require(try Self.load("result_messages.json")["messages"] as? [[String: Any]])
        var statuses: Set<TaskState> = []
        for capture in messages {
            let body = Data((capture["body_raw"] as! String).utf8)
            let result = try ResultMessage.decode(body: body)
            statuses.insert(result.status)
            #expect(result.json == (try JSONValue.parse(body)))
        }
        #expect(statuses.isSuperset(of: [.started, .success, .failure, .retry, .progress]))
        let failure = try messages.map { try ResultMessage.decode(body: Data(($0["body_raw"] as! String).utf8)) }
            .first { $0.status == .failure && $0.failure?.type == "ValueError" }
        #expect(failure?.failure?.message == "bad value")
        #expect(failure?.failure?.module == "builtins")
    }

    @Test func badInputsGiveTheirReason() throws {
        let headers: FieldTable = ["task": "tasks.add", "id": "abc"]
        func reason(_ properties: BasicProperties, _ body: String) -> TaskMessageError.Reason? {
            do {
                _ = try TaskMessage.decode(properties: properties, body: Data(body.utf8))
                return nil
            } catch let error as TaskMessageError {
                return error.reason
            } catch {
                return nil
            }
        }
        #expect(reason(BasicProperties(contentType: "application/x-python-serialize", headers: headers), "x") == .unsupportedContentType)
        #expect(reason(BasicProperties(contentType: "application/json", headers: headers), "{this is not json") == .invalidJSON)
        #expect(reason(BasicProperties(contentType: "application/json"), "{\"hello\": 1}") == .notATaskMessage)
        #expect(reason(BasicProperties(contentType: "application/json", headers: headers), "[1, 2]") == .invalidBody)
        #expect(reason(BasicProperties(contentType: "application/json", headers: headers), "[[], [], {}]") == .invalidBody)
        // Celery runs a body that is an object with args (the older form); so do we.
        let hybrid = try TaskMessage.decode(
            properties: BasicProperties(contentType: "application/json", headers: headers), body: Data("{\"args\": [1, 2]}".utf8))
        #expect(hybrid.args == [1, 2])
    }

    @Test func pythonReprMatchesCelery() {
        let message = TaskMessage(name: "tasks.add", args: [2, 3], kwargs: ["z": 1])
        let headers = message.encode().properties.headers!
        #expect(headers["argsrepr"] == "(2, 3)")
        #expect(headers["kwargsrepr"] == "{'z': 1}")
        let one = TaskMessage(name: "t", args: ["it's", nil, true, 1.5])
        #expect(one.encode().properties.headers!["argsrepr"] == "(\"it's\", None, True, 1.5)")
    }

    @Test func celeryTimestampsRoundTrip() throws {
        let text = "2026-11-25T15:22:28.144239+00:00"
        let date = try #require(CeleryTime.parse(text))
        #expect(CeleryTime.format(date) == text)
        #expect(CeleryTime.parse("2026-11-25T16:22:28+01:00") == CeleryTime.parse("2026-11-25T15:22:28Z"))
        #expect(CeleryTime.parse("yesterday") == nil)
    }

    @Test func celeryTimestampsAreWrittenWithEveryDigit() {
        #expect(CeleryTime.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000+00:00")
        #expect(CeleryTime.format(Date(timeIntervalSince1970: 1_000_000_000.5)) == "2001-09-09T01:46:40.500000+00:00")
        #expect(CeleryTime.format(Date(timeIntervalSince1970: 1_700_000_009.000_001)) == "2023-11-14T22:13:29.000001+00:00")
        #expect(CeleryTime.format(Date(timeIntervalSince1970: -62_135_596_800)) == "0001-01-01T00:00:00.000000+00:00")
        #expect(CeleryTime.format(Date(timeIntervalSince1970: 253_402_300_799)) == "9999-12-31T23:59:59.000000+00:00")
        #expect(CeleryTime.format(Date(timeIntervalSince1970: .nan)) == "1970-01-01T00:00:00.000000+00:00")
    }
}

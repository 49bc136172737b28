@testable import AMQPTasks
import Foundation
import Testing

/// Task ids are written as Celery writes them (`str(uuid4())`): lowercase, hyphens at 8-4-4-4-12.
@Suite struct UUIDStringTests {
    @Test func aUUIDIsWrittenAsFoundationWritesItInLowercase() throws {
        let fixed = try #require(UUID(uuidString: "6F1F4B0E-5C1A-4F4E-9A53-2F3C1B7D0E61"))
        #expect(fixed.lowercasedString == "6f1f4b0e-5c1a-4f4e-9a53-2f3c1b7d0e61")
        let edges = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                     UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))]
        for uuid in edges + (0..<1000).map({ _ in UUID() }) {
            #expect(uuid.lowercasedString == uuid.uuidString.lowercased())
        }
    }
}

/// Bytes in hex the way `String(cFormat: "%02x")` writes them, one byte at a time (what trace ids, span ids and revoke
/// claim queues were made with before `LowercaseHex`).
@Suite struct LowercaseHexTests {
    @Test func bytesAreWrittenAsPrintfWritesThem() {
        for length in [0, 1, 2, 8, 16, 20, 64, 65, 100] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) } + [0, 15, 16, 255].prefix(length)
            let expected = bytes.map { String(format: "%02x", $0) }.joined()
            #expect(LowercaseHex.string(bytes) == expected)
        }
    }

    @Test func separatorsGoBeforeTheMarkedBytesOnly() {
        #expect(LowercaseHex.string([0xab, 0xcd, 0xef], separator: UInt8(ascii: ":"), separatorsBefore: 0b110) == "ab:cd:ef")
        // A mark past the last byte writes nothing (and takes no room).
        #expect(LowercaseHex.string([0x01], separator: UInt8(ascii: ":"), separatorsBefore: 0b10) == "01")
        #expect(UUID().shortLowercasedString.utf8.count == 8)
    }

    @Test func randomTraceAndSpanIDsAreValidHex() throws {
        for _ in 0..<200 {
            let trace = TraceParent.randomTraceID(), span = TraceParent.randomSpanID()
            #expect(trace.utf8.count == 32 && span.utf8.count == 16)
            let parsed = try #require(TraceParent(header: "00-\(trace)-\(span)-01"))
            #expect(parsed.traceID == trace && parsed.spanID == span)
            #expect(parsed.description == "00-\(trace)-\(span)-01")
        }
    }
}

/// Whole doubles keep Python's `.0` (`json.dumps(2.0)` is `2.0`), written without a `vsnprintf` per number.
@Suite struct WholeFloatTests {
    @Test func wholeDoublesAreWrittenAsPercentPointOneFWritesThem() {
        var values: [Double] = [0, -0.0, 1, -1, 2, 1e15, -1e15, 9_999_999_999_999_998, -9_999_999_999_999_998, 4_503_599_627_370_496]
        values += (0..<500).map { _ in Double(Int64.random(in: -9_999_999_999_999_998...9_999_999_999_999_998)).rounded() }
        for d in values where d == d.rounded() && abs(d) < 1e16 {
            #expect(PythonRepr.wholeFloat(d) == String(format: "%.1f", d), "\(d)")
        }
        #expect(String(decoding: JSONCodec.serialize(.array([.double(-0.0), .double(3), .double(1.5)])), as: UTF8.self) == "[-0.0,3.0,1.5]")
    }
}

/// Task ids come from `UUID.random()`: random version 4 UUIDs without a file opened and read for each (issue 17).
@Suite struct RandomUUIDTests {
    @Test func aRandomUUIDIsVersion4WithTheRFCVariantAndNeverRepeats() {
        var seen = Set<UUID>()
        for _ in 0..<10_000 {
            let uuid = UUID.random()
            #expect(uuid.uuid.6 >> 4 == 4, "version nibble of \(uuid)")
            #expect(uuid.uuid.8 >> 6 == 0b10, "variant bits of \(uuid)")
            seen.insert(uuid)
        }
        #expect(seen.count == 10_000)
    }

    /// Foundation's `UUID()` read `/dev/urandom` once per id: 1,000 ids were 1,000 read calls on this thread.
    @Test func taskIdsAreMadeWithoutAReadPerId() throws {
        // A kernel or sandbox whose `syscr` stays put (no task I/O accounting) would let this test pass whatever
        // the ids cost: it must see reads before it can say there were none.
        let unread = try readCallsOfThisThread()
        _ = try String(contentsOfFile: "/proc/self/stat", encoding: .utf8)
        try #require(
            try readCallsOfThisThread() > unread,
            "syscr in /proc/thread-self/io did not count a file read: this kernel cannot show a read per id")
        let before = try readCallsOfThisThread()
        var ids: [String] = []
        for _ in 0..<1000 { ids.append(TaskMessage(name: "demo.echo").id) }
        let reads = try readCallsOfThisThread() - before
        #expect(Set(ids).count == 1000)
        // Reading /proc/thread-self/io itself takes a few read calls; one per id would be 1,000 more.
        #expect(reads < 50, "\(reads) read calls for 1,000 task ids")
    }

    /// The `syscr` count (read system calls so far) of the calling thread, from /proc/thread-self/io.
    private func readCallsOfThisThread() throws -> Int {
        let text: String
        do {
            text = try String(contentsOfFile: "/proc/thread-self/io", encoding: .utf8)
        } catch {
            Issue.record("cannot read /proc/thread-self/io (\(error)): this test needs Linux with task I/O accounting")
            throw error
        }
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("syscr:") }, "no syscr in \(text)")
        return try #require(Int(line.dropFirst("syscr:".count).trimmingCharacters(in: .whitespaces)))
    }
}

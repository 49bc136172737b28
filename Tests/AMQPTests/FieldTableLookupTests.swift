import AMQP
import Testing

/// Lookups by key in a field table (no broker).
@Suite struct FieldTableLookupTests {
    @Test func aKeyIsFoundAmongKeysOfOtherAndEqualLengths() {
        var table: FieldTable = ["id": "a", "eta": "b", "ids": "c", "retries": 3, "caf\u{E9}": "composed"]
        #expect(table["id"] == "a")
        #expect(table["ids"] == "c")
        #expect(table["eta"] == "b")
        #expect(table["retries"] == 3)
        #expect(table["i"] == nil)
        #expect(table["idx"] == nil)
        #expect(table["caf\u{E9}"] == "composed")
        // The decomposed spelling is other bytes (and another length) on the wire: another key.
        #expect(table["cafe\u{301}"] == nil)
        table["cafe\u{301}"] = "decomposed"
        #expect(table["caf\u{E9}"] == "composed")
        #expect(table["cafe\u{301}"] == "decomposed")
        #expect(table.count == 6)
        table["cafe\u{301}"] = nil
        table["eta"] = nil
        #expect(table["eta"] == nil)
        #expect(table.count == 4)
    }
}

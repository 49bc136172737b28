import AMQP
import Testing

/// Lookups by key in a field table (no broker).
@Suite struct FieldTableLookupTests {
    @Test func keysMatchByTheirBytes() {
        var table: FieldTable = ["id": "a", "eta": "b", "retries": 3, "caf\u{E9}": "composed"]
        #expect(table["id"] == "a")
        #expect(table["eta"] == "b")
        #expect(table["retries"] == 3)
        #expect(table["i"] == nil)
        #expect(table["idx"] == nil)
        #expect(table["caf\u{E9}"] == "composed")
        // The decomposed spelling is other bytes on the wire: another key, though Swift's == calls it equal.
        #expect(table["cafe\u{301}"] == nil)
        table["cafe\u{301}"] = "decomposed"
        #expect(table.count == 5)
        #expect(table["caf\u{E9}"] == "composed")
        table["eta"] = nil
        #expect(table["eta"] == nil)
        #expect(table.count == 4)
    }
}

import AMQPTasks
import Foundation
import Testing

/// The JSON reader and writer every task and result goes through.
@Suite struct JSONCodecTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }

    @Test func readsEveryKindOfValue() throws {
        #expect(try parse(#"{"a": [1, -2, 3.5, 1e3, true, false, null, "x"], "b": {}}"#)
            == ["a": [1, -2, 3.5, 1000.0, true, false, nil, "x"], "b": [:]])
        #expect(try parse("  42 ") == 42)
        #expect(try parse("6.0") == .double(6), "a double stays a double")
        #expect(try parse("9223372036854775807") == .int(Int.max))
        #expect(try parse("92233720368547758070") == .double(9.223372036854776e19), "too big for Int")
    }

    @Test func readsEscapesAndUnicode() throws {
        #expect(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#) == .string("a\"b\\c/d\n\té😀"))
        #expect(try parse("\"grüße ✓\"") == "grüße ✓")
    }

    @Test func writesWhatItReads() throws {
        let value: JSONValue = ["text": "quote \" backslash \\ newline \n tab \t bell \u{7} é 😀", "n": [1, 2.5, 3.0, nil, true]]
        let text = String(decoding: value.jsonData(), as: UTF8.self)
        #expect(text == #"{"n":[1,2.5,3.0,null,true],"text":"quote \" backslash \\ newline \n tab \t bell \u0007 é 😀"}"#)
        #expect(try JSONValue.parse(value.jsonData()) == value)
    }

    @Test func rejectsWhatIsNotJSON() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "01x", "\"unterminated", "[1] 2", "{'a': 1}", "\"\\ud83d\"", "-", "11e308", "-1e999"] {
            #expect(throws: (any Error).self, "\(bad)") { try parse(bad) }
        }
    }

    @Test func refusesNestingDeepEnoughToExhaustTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: (any Error).self) { try parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try parse(fine) }
    }
}

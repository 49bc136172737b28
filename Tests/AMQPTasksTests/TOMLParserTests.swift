@testable import AMQPTasks
import Foundation
import Testing

/// Our TOML 1.0 reader (Sources/AMQPTasks/Config/TOML): each feature read right, each rule enforced with its line.
@Suite struct TOMLParserTests {
    func parse(_ text: String) throws -> TOMLTable { try TOMLParser.parse(text) }

    /// The error `text` is refused with; nil when it is accepted.
    func failure(_ text: String) -> TOMLParseError? {
        do throws(TOMLParseError) {
            _ = try TOMLParser.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func keysBareQuotedAndDotted() throws {
        let t = try parse(
            """
            bare_key-1 = 1
            "quoted key" = 2
            'literal "key"' = 3
            "" = 4
            a . b.  "c.d" = 5
            1234 = 6
            "\\u00e9" = 7
            """)
        #expect(t["bare_key-1"] == .integer(1))
        #expect(t["quoted key"] == .integer(2))
        #expect(t["literal \"key\""] == .integer(3))
        #expect(t[""] == .integer(4))
        #expect(t["a"]?.table?["b"]?.table?["c.d"] == .integer(5))
        #expect(t["1234"] == .integer(6))
        #expect(t["é"] == .integer(7))
        #expect(t.keysInFileOrder == ["bare_key-1", "quoted key", "literal \"key\"", "", "a", "1234", "é"])
        #expect(t.keys == t.keysInFileOrder.sorted())
    }

    @Test func basicAndLiteralStringsWithEveryEscape() throws {
        let t = try parse(
            #"""
            escapes = "\b\t\n\f\r\"\\ \u00E9 \U0001F600"
            tab = "a	b"
            literal = 'C:\Users\nodejs\templates'
            """#)
        #expect(t["escapes"] == .string("\u{08}\t\n\u{0C}\r\"\\ é 😀"))
        #expect(t["tab"] == .string("a\tb"))
        #expect(t["literal"] == .string(#"C:\Users\nodejs\templates"#))
    }

    @Test func multiLineStrings() throws {
        let t = try parse(
            "basic = \"\"\"\nRoses\r\nViolets\"\"\"\n"
                + "folded = \"\"\"\\\n    The quick \\\n\n    fox.\\\n  \"\"\"\n"
                + "quotes = \"\"\"Here are two quotation marks: \"\". Three: \"\"\\\".\"\"\"\"\"\n"
                + "literal = '''\nThe first newline is\ntrimmed in raw strings.\n   \\n stays '' '''\n"
                + "quoted = ''''That,' she said.''''\n")
        #expect(t["basic"] == .string("Roses\nViolets"), "the first newline is trimmed, CRLF becomes LF")
        #expect(t["folded"] == .string("The quick fox."))
        #expect(t["quotes"] == .string("Here are two quotation marks: \"\". Three: \"\"\".\"\""))
        #expect(t["literal"] == .string("The first newline is\ntrimmed in raw strings.\n   \\n stays '' "))
        #expect(t["quoted"] == .string("'That,' she said.'"))
    }

    @Test func integersInEveryBase() throws {
        let t = try parse(
            """
            a = +99
            b = -17
            c = 0
            d = 1_000_000
            e = 0xDEAD_beef
            f = 0o755
            g = 0b1101_0110
            h = 9223372036854775807
            i = -9223372036854775808
            j = 0x7fffffffffffffff
            k = -0
            """)
        #expect(t["a"] == .integer(99))
        #expect(t["b"] == .integer(-17))
        #expect(t["c"] == .integer(0))
        #expect(t["d"] == .integer(1_000_000))
        #expect(t["e"] == .integer(0xDEAD_BEEF))
        #expect(t["f"] == .integer(0o755))
        #expect(t["g"] == .integer(0b1101_0110))
        #expect(t["h"] == .integer(.max))
        #expect(t["i"] == .integer(.min))
        #expect(t["j"] == .integer(.max))
        #expect(t["k"] == .integer(0))
    }

    @Test func floatsWithExponentsUnderscoresInfinityAndNaN() throws {
        let t = try parse(
            """
            a = +1.0
            b = -0.01
            c = 5e+22
            d = 1e06
            e = -2E-2
            f = 6.626e-34
            g = 224_617.445_991_228
            h = inf
            i = -inf
            j = nan
            k = -nan
            l = -0.0
            """)
        #expect(t["a"] == .float(1))
        #expect(t["b"] == .float(-0.01))
        #expect(t["c"] == .float(5e22))
        #expect(t["d"] == .float(1e6))
        #expect(t["e"] == .float(-0.02))
        #expect(t["f"] == .float(6.626e-34))
        #expect(t["g"] == .float(224_617.445_991_228))
        #expect(t["h"] == .float(.infinity))
        #expect(t["i"] == .float(-.infinity))
        #expect(t["j"]?.double?.isNaN == true)
        #expect(t["k"]?.double?.isNaN == true)
        #expect(t["l"]?.double.map { $0 == 0 && $0.sign == .minus } == true)
    }

    @Test func datesAndTimesKeepTheirTextAndParts() throws {
        let t = try parse(
            """
            odt1 = 1979-05-27T07:32:00Z
            odt2 = 1979-05-27T00:32:00-07:00
            odt3 = 1979-05-27 00:32:00.999999+05:30
            ldt = 1979-05-27t07:32:00.5
            ld = 2024-02-29
            lt = 00:32:00.1234567891
            """)
        guard case .offsetDateTime(let odt1) = t["odt1"] else { Issue.record("odt1: \(String(describing: t["odt1"]))"); return }
        #expect(odt1 == TOMLDateTime(
            text: "1979-05-27T07:32:00Z", day: .init(year: 1979, month: 5, day: 27),
            clock: .init(hour: 7, minute: 32, second: 0, nanosecond: 0), offsetMinutes: 0))
        guard case .offsetDateTime(let odt2) = t["odt2"], case .offsetDateTime(let odt3) = t["odt3"] else {
            Issue.record("odt2/odt3"); return
        }
        #expect(odt2.offsetMinutes == -420)
        #expect(odt3.text == "1979-05-27 00:32:00.999999+05:30", "the space separator is part of the value")
        #expect(odt3.clock?.nanosecond == 999_999_000)
        #expect(odt3.offsetMinutes == 330)
        guard case .localDateTime(let ldt) = t["ldt"] else { Issue.record("ldt"); return }
        #expect(ldt.clock?.nanosecond == 500_000_000)
        #expect(ldt.offsetMinutes == nil)
        #expect(t["ld"] == .localDate(TOMLDateTime(text: "2024-02-29", day: .init(year: 2024, month: 2, day: 29))))
        guard case .localTime(let lt) = t["lt"] else { Issue.record("lt"); return }
        #expect(lt.clock == .init(hour: 0, minute: 32, second: 0, nanosecond: 123_456_789), "nanoseconds: nine digits")
        #expect(t["ld"]?.type == "date" && t["lt"]?.type == "time" && t["ldt"]?.type == "date-time")
    }

    @Test func arraysMixedNestedMultiLineWithComments() throws {
        let t = try parse(
            """
            mixed = [ 1, "two", 3.0, [4, [5]], { six = 6 }, true, 1979-05-27 ]
            spread = [ # a comment
              1,
              2, # another
            ]
            empty = []
            """)
        #expect(t["mixed"] == .array([
            .integer(1), .string("two"), .float(3), .array([.integer(4), .array([.integer(5)])]),
            .table({ var s = TOMLTable(); s.append("six", .integer(6)); return s }()), .boolean(true),
            .localDate(TOMLDateTime(text: "1979-05-27", day: .init(year: 1979, month: 5, day: 27))),
        ]))
        #expect(t["spread"] == .array([.integer(1), .integer(2)]), "a trailing comma is allowed")
        #expect(t["empty"] == .array([]))
    }

    @Test func tablesSubTablesDottedKeysAndArraysOfTables() throws {
        let t = try parse(
            """
            # top-level keys come first
            title = "x"

            [fruit]
            apple.color = "red"
            apple.taste.sweet = true

            [fruit.apple.texture]  # sub-table of a dotted-key table
            smooth = true

            [x.y.z]
            w = 1
            [x]  # defining a super-table after its sub-table is allowed
            v = 2

            [[fruits]]
            name = "apple"
            [fruits.physical]
            color = "red"
            [[fruits.varieties]]
            name = "red delicious"
            [[fruits.varieties]]
            name = "granny smith"
            [[fruits]]
            name = "banana"

            [inline]
            point = { x = 1, y.z = 2 }
            """)
        let apple = t["fruit"]?.table?["apple"]?.table
        #expect(apple?["color"] == .string("red"))
        #expect(apple?["taste"]?.table?["sweet"] == .boolean(true))
        #expect(apple?["texture"]?.table?["smooth"] == .boolean(true))
        #expect(t["x"]?.table?["v"] == .integer(2))
        #expect(t["x"]?.table?["y"]?.table?["z"]?.table?["w"] == .integer(1))
        let fruits = t["fruits"]?.array ?? []
        #expect(fruits.count == 2)
        #expect(fruits.first?.table?["physical"]?.table?["color"] == .string("red"))
        #expect(fruits.first?.table?["varieties"]?.array?.map { $0.table?["name"] } == [.string("red delicious"), .string("granny smith")])
        #expect(fruits.last?.table?["name"] == .string("banana"))
        #expect(t["inline"]?.table?["point"]?.table?["y"]?.table?["z"] == .integer(2))
    }

    @Test func crlfLineEndingsAndAByteOrderMarkAreAccepted() throws {
        let t = try parse("\u{FEFF}[a]\r\nb = 1 # c\r\nc = \"d\"\r\n")
        #expect(t["a"]?.table?["b"] == .integer(1))
        #expect(t["a"]?.table?["c"] == .string("d"))
    }

    /// Each rule of TOML 1.0 refused, with the line (and column) of the mistake and words that say which rule.
    @Test func eachErrorNamesItsLineAndRule() {
        let cases: [(text: String, line: Int, column: Int?, says: String)] = [
            // Redefinitions.
            ("a = 1\na = 2\n", 2, 1, "defined twice"),
            ("[a]\nb = 1\n[a]\n", 3, 2, "[a] is defined twice (on line 1)"),
            ("[fruit]\napple.color = \"red\"\n[fruit.apple]\n", 3, 8, "already defined by dotted keys"),
            ("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", 4, 3, "dotted keys cannot add to the table 'c'"),
            ("a = { x = 1 }\na.y = 2\n", 2, 1, "complete as written"),
            ("a = { x = 1 }\n[a]\n", 2, 2, "complete as written"),
            ("a = { x = 1 }\n[a.b]\n", 2, 2, "complete as written"),
            ("a = [1]\n[[a]]\n", 2, 3, "cannot append to an array written with [ ]"),
            ("[a]\n[[a]]\n", 2, 3, "cannot make it an array of tables"),
            ("[[a]]\n[a]\n", 2, 2, "is an array of tables"),
            ("a = 1\n[a.b]\n", 2, 2, "already holds a value (integer 1)"),
            ("a = 1\na.b = 2\n", 2, 1, "already holds a value"),
            ("a = { x = 1, x = 2 }\n", 1, 14, "defined twice"),
            ("[[a]]\nb = 1\nb = 2\n", 3, 1, "defined twice"),
            // Integers.
            ("a = 012\n", 1, 5, "leading zeros"),
            ("a = 9223372036854775808\n", 1, 5, "does not fit in 64 bits"),
            ("a = -9223372036854775809\n", 1, 5, "does not fit in 64 bits"),
            ("a = 0x8000000000000000\n", 1, 5, "does not fit in 64 bits"),
            ("a = 1__2\n", 1, 5, "single underscores"),
            ("a = _1\n", 1, 5, "is not a value"),
            ("a = 1_\n", 1, 5, "single underscores"),
            ("a = 0x_1\n", 1, 5, "hexadecimal"),
            ("a = +0x1\n", 1, 5, "is not a value"),
            ("a = 0b102\n", 1, 5, "binary"),
            ("a = 0O7\n", 1, 5, "is not a value"),
            // Floats.
            ("a = 1.\n", 1, 5, "is not a float"),
            ("a = .5\n", 1, 5, "is not a float"),
            ("a = 1.e5\n", 1, 5, "is not a float"),
            ("a = 1e\n", 1, 5, "is not a float"),
            ("a = 01.5\n", 1, 5, "leading zeros"),
            ("a = 1.5_\n", 1, 5, "is not a float"),
            ("a = 1e400\n", 1, 5, "too large"),
            ("a = infinity\n", 1, 5, "is not a value"),
            // Dates and times.
            ("a = 2021-02-30\n", 1, 5, "day 30 is not from 01 to 28"),
            ("a = 2023-02-29\n", 1, 5, "not from 01 to 28"),
            ("a = 2021-13-01\n", 1, 5, "month 13"),
            ("a = 1979-05-27T24:00:00\n", 1, 5, "hour 00-23"),
            ("a = 07:32\n", 1, 5, "needs the seconds"),
            ("a = 1979-05-27T07:32:00+5:00\n", 1, 5, "offset"),
            ("a = 1979-05-27T07:32:00.\n", 1, 5, "fraction"),
            ("a = 1979-05-27T\n", 1, 5, "not a valid time"),
            ("a = 07:32:00Z\n", 1, 5, "no offset"),
            // Strings.
            ("a = \"abc\n", 1, 9, "not closed"),
            ("a = 'abc\n", 1, 9, "not closed"),
            ("x = 1\na = \"\"\"abc\n\n", 4, 1, "opened on line 2 is not closed"),
            ("a = '''abc''''''\n", 1, 16, "too many quotes"),
            ("a = \"\\x41\"\n", 1, 6, "invalid escape \\x"),
            ("a = \"\\e\"\n", 1, 6, "invalid escape \\e"),
            ("a = \"abc\\\n", 1, 9, "invalid escape '\\' followed by the end of the line"),
            ("a = \"\\\u{01}\"\n", 1, 6, "invalid escape '\\' followed by control character U+0001"),
            ("a = \"\\uD800\"\n", 1, 6, "U+D800 is not a Unicode scalar value"),
            ("a = \"\\U00110000\"\n", 1, 6, "U+110000 is not a Unicode scalar value"),
            ("a = \"\\u12\"\n", 1, 6, "exactly 4 hexadecimal digits"),
            ("a = \"a\u{01}b\"\n", 1, 7, "control character U+0001"),
            ("a = \"a\u{7F}b\"\n", 1, 7, "control character U+007F"),
            ("a = 'a\u{00}b'\n", 1, 7, "control character U+0000"),
            ("a = \"\"\"a\u{0B}b\"\"\"\n", 1, 9, "control character U+000B"),
            ("a = \"a\rb\"\n", 1, 7, "carriage return"),
            ("a = 1 # comment \u{07}\n", 1, 17, "control character U+0007 is not allowed in a comment"),
            ("a = 1\r\nb = 2\r", 2, 6, "carriage return"),
            ("\"\"\"a\"\"\" = 1\n", 1, 1, "cannot be a multi-line string"),
            // Arrays and inline tables.
            ("a = [1 2]\n", 1, 8, "expected ',' or ']'"),
            ("a = [,]\n", 1, 6, "expected a value or ']'"),
            ("a = [1,,2]\n", 1, 8, "expected a value or ']'"),
            ("a = [1,\n", 2, 1, "expected a value, found the end of the file"),
            ("a = [\"celery\", }\n", 1, 16, "expected a value or ']' in the array, found '}'"),
            ("a = { x = 1,\n y = 2 }\n", 1, 13, "must be on one line"),
            ("a = { x = 1\n}\n", 1, 12, "must be on one line"),
            ("a = { x = 1, }\n", 1, 14, "cannot end with a comma"),
            ("a = { x = 1 y = 2 }\n", 1, 13, "expected ',' or '}'"),
            (String(repeating: "a = [", count: 1) + String(repeating: "[", count: 200), 1, 133, "nest more than 128 deep"),
            // Keys, headers, lines.
            ("[a\n", 1, 3, "expected ']' to close the table header"),
            ("[]\n", 1, 2, "a table header must start with a key name, found ']'"),
            ("[[,queues]]\n", 1, 3, "a table header must start with a key name, found ','"),
            ("[ =x]\n", 1, 3, "found '='"),
            ("[a.]\n", 1, 4, "expected a key"),
            ("[[a]\n", 1, 4, "expected ']]'"),
            ("[a b]\n", 1, 4, "expected ']'"),
            ("a =\n", 1, 4, "expected a value, found the end of the line"),
            ("a\n", 1, 2, "expected '=' after the key 'a'"),
            ("= 1\n", 1, 1, "expected a key"),
            ("a = 1 b = 2\n", 1, 7, "expected the end of the line after the value"),
            ("a = truex\n", 1, 9, "expected the end of the line"),
            ("a = TRUE\n", 1, 5, "is not a value"),
            ("a = bare\n", 1, 5, "is not a value"),
            ("[a] b = 1\n", 1, 5, "expected the end of the line"),
        ]
        for (text, line, column, says) in cases {
            guard let error = failure(text) else {
                Issue.record("accepted, should be refused: \(text.debugDescription)")
                continue
            }
            #expect(error.line == line, "\(text.debugDescription): \(error)")
            if let column { #expect(error.column == column, "\(text.debugDescription): \(error)") }
            #expect(error.message.contains(says), "\(text.debugDescription): \(error)")
        }
    }

    /// Each part of a header or a dotted key is a table one level deeper: tens of thousands of parts (a few hundred
    /// kilobytes of file) overflowed the stack where the tree was built (recursively), so they count towards the same
    /// limit as arrays and inline tables.
    @Test func keysThatNestTablesTooDeepAreRefusedNotACrash() {
        let chain = { (count: Int) in Array(repeating: "a", count: count).joined(separator: ".") }
        let cases: [(String, Int, Int, String)] = [
            (chain(100_000) + " = 1\n", 1, 257, "tables nest more than 128 deep (a dotted key of 100000 parts)"),
            ("[" + chain(100_000) + "]\n", 1, 258, "tables nest more than 128 deep (a header of 100000 keys)"),
            ("[" + chain(100) + "]\n" + chain(30) + " = 1\n", 2, 57, "a dotted key of 30 parts"),
            ("x = " + String(repeating: "{ a = ", count: 60) + "{ " + chain(70) + " = 1 }" + String(repeating: " }", count: 60), 1,
                501, "a dotted key of 70 parts"),
        ]
        for (text, line, column, says) in cases {
            guard let error = failure(text) else {
                Issue.record("accepted, should be refused: \(text.prefix(80))…")
                continue
            }
            #expect(error.line == line && error.column == column, "\(text.prefix(80))…: \(error)")
            #expect(error.message.contains(says), "\(text.prefix(80))…: \(error)")
        }
        // Up to the limit is fine.
        #expect(failure("[" + chain(128) + "]\nb = 1\n") == nil)
        #expect(failure(chain(129) + " = 1\n") == nil)
        #expect(failure("[" + chain(100) + "]\n" + chain(29) + " = 1\n") == nil)
    }

    /// `[[a]]` appended to a copy of the array of tables, so each header copied every element before it: 100,000
    /// headers (600 kB) took minutes. They take a fraction of a second now; the time limit is only a safety net.
    @Test(.timeLimit(.minutes(1))) func manyArrayOfTablesHeadersAreReadInLinearTime() throws {
        let t = try parse(String(repeating: "[[a]]\nb = 1\n", count: 100_000) + String(repeating: "[[c.d]]\n", count: 100_000))
        #expect(t["a"]?.array?.count == 100_000)
        #expect(t["c"]?.table?["d"]?.array?.count == 100_000)
    }

    /// Damaged documents (seeded random edits of the example configuration and the differential corpus, with the
    /// bytes TOML gives meaning to) are each answered, accepted or refused, and a refusal points inside the document:
    /// the parser neither traps nor loops on any of them.
    @Test func damagedDocumentsAreAnsweredWithAPlaceInsideThem() throws {
        let example = try String(
            contentsOf: Broker.repoRoot.appendingPathComponent("Deploy/examples/amqp-tasks.toml"), encoding: .utf8)
        let seeds = [example] + TOMLDifferentialTests.valid
        let alphabet = Array("[]{}=,.\"'#\\\n\r\t _-+:0123456789aeEfinrstuxzTZ\u{0}\u{7F}é".utf8)
        var random = SeededRandom(seed: 0x70_6D_6C)
        var refused = 0
        for round in 0..<4000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0...bytes.count, using: &random)
                let byte = alphabet.randomElement(using: &random)!
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes.insert(byte, at: at)
                case 1 where at < bytes.count: bytes[at] = byte
                default: if at < bytes.count { bytes.remove(at: at) }
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard let error = failure(text) else { continue }
            refused += 1
            let lines = text.utf8.filter { $0 == 0x0A }.count + 1
            #expect((1...lines).contains(error.line) && error.column >= 1, "\(text.debugDescription): \(error)")
        }
        #expect(refused > 1000, "the edits should break most documents; \(refused) of 4000 refused")
    }

    /// What TOML 1.0 allows near the rules above is accepted.
    @Test func whatTheRulesAllowIsAccepted() {
        let valid = [
            "[a.b.c]\nz = 9\n[a]\nb.d = 1\n",  // dotted keys into a table only made on the way to a header
            "[a]\nb.c = 1\n[a.b.d]\n",  // a header's sub-table under a dotted-key table
            "a = \"\"\"\"\"\"\n",  // the empty multi-line string
            "a = \"\"\"x\"\"\"\"\"\n",  // two quotes before the closing three
            "a = 1979-05-27T07:32:60Z\n",  // a leap second, as RFC 3339 allows
            "a = 0.0\nb = +0.0\nc = 0e0\nd = 1e-0_1\n",
            "a = [ [ 1, 2 ], [\"a\", \"b\"] ]\n",
            "a = { b = [\n 1,\n 2 ] }\n",  // a newline within a value inside an inline table
            "\t a \t= \t1 \t# blanks\n",
            "[ a . b ]\n[[ c ]]\n",
            "",
            "# only a comment",
        ]
        for text in valid {
            #expect(failure(text) == nil, "\(text.debugDescription): \(String(describing: failure(text)))")
        }
    }
}

@testable import AMQPTasks
import Foundation
import TOMLKit
import Testing

/// Our TOML reader against TOMLKit (toml++ 3.4), on every `.toml` file of the repository and a corpus of valid and
/// invalid documents: valid ones must give equal trees, invalid ones must be refused by both.
@Suite struct TOMLDifferentialTests {
    /// One form both trees convert to. Floats compare by their printed value (`nan` whatever its sign: toml++ does
    /// not keep it); dates and times by their parts.
    indirect enum Tree: Equatable, CustomStringConvertible {
        case string(String)
        case integer(Int64)
        case float(String)
        case boolean(Bool)
        case date(Int, Int, Int)
        case time(Int, Int, Int, Int)
        case dateTime(date: Tree, time: Tree, offsetMinutes: Int?)
        case array([Tree])
        case table([String: Tree])

        var description: String {
            switch self {
            case .string(let s): s.debugDescription
            case .integer(let i): "\(i)"
            case .float(let f): f
            case .boolean(let b): "\(b)"
            case .date(let y, let m, let d): "\(y)-\(m)-\(d)"
            case .time(let h, let m, let s, let n): "\(h):\(m):\(s).\(n)"
            case .dateTime(let d, let t, let o): "\(d)T\(t)\(o.map { "@\($0)" } ?? "")"
            case .array(let a): "[\(a.map(\.description).joined(separator: ", "))]"
            case .table(let t): "{\(t.keys.sorted().map { "\($0.debugDescription): \(t[$0]!)" }.joined(separator: ", "))}"
            }
        }

        static func float(_ value: Double) -> Tree { .float(value.isNaN ? "nan" : "\(value)") }

        init(ours value: AMQPTasks.TOMLValue) {
            switch value {
            case .string(let s): self = .string(s)
            case .integer(let i): self = .integer(i)
            case .float(let f): self = .float(f)
            case .boolean(let b): self = .boolean(b)
            case .localDate(let d): self = Tree(day: d.day!)
            case .localTime(let t): self = Tree(clock: t.clock!)
            case .localDateTime(let dt), .offsetDateTime(let dt):
                self = .dateTime(date: Tree(day: dt.day!), time: Tree(clock: dt.clock!), offsetMinutes: dt.offsetMinutes)
            case .array(let a): self = .array(a.map(Tree.init(ours:)))
            case .table(let t): self = Tree(ours: t)
            }
        }

        init(ours table: AMQPTasks.TOMLTable) {
            var entries: [String: Tree] = [:]
            for key in table.keysInFileOrder { entries[key] = Tree(ours: table[key]!) }
            self = .table(entries)
        }

        init(day: AMQPTasks.TOMLDateTime.Day) { self = .date(day.year, day.month, day.day) }
        init(clock: AMQPTasks.TOMLDateTime.Clock) { self = .time(clock.hour, clock.minute, clock.second, clock.nanosecond) }

        init(theirs value: TOMLValueConvertible) {
            switch value.type {
            case .string: self = .string(value.string!)
            case .int: self = .integer(Int64(value.int!))
            case .double: self = .float(value.double!)
            case .bool: self = .boolean(value.bool!)
            case .date: self = Tree(theirs: value.date!)
            case .time: self = Tree(theirs: value.time!)
            case .dateTime:
                let dt = value.dateTime!
                self = .dateTime(date: Tree(theirs: dt.date), time: Tree(theirs: dt.time), offsetMinutes: dt.offset?.offset)
            case .array: self = .array(value.array!.map { Tree(theirs: $0) })
            case .table: self = Tree(theirs: value.table!)
            }
        }

        init(theirs table: TOMLKit.TOMLTable) {
            var entries: [String: Tree] = [:]
            for key in table.keys { entries[key] = Tree(theirs: table[key]!) }
            self = .table(entries)
        }

        init(theirs date: TOMLKit.TOMLDate) { self = .date(date.year, date.month, date.day) }
        init(theirs time: TOMLKit.TOMLTime) { self = .time(time.hour, time.minute, time.second, time.nanoSecond) }
    }

    enum Outcome: Equatable {
        case tree(Tree)
        case refused(String)

        var isRefused: Bool { if case .refused = self { true } else { false } }
    }

    static func ours(_ text: String) -> Outcome {
        do throws(AMQPTasks.TOMLParseError) {
            return .tree(Tree(ours: try AMQPTasks.TOMLParser.parse(text)))
        } catch {
            return .refused(error.description)
        }
    }

    static func theirs(_ text: String) -> Outcome {
        do {
            return .tree(Tree(theirs: try TOMLKit.TOMLTable(string: text)))
        } catch {
            return .refused("\(error)")
        }
    }

    /// Every feature of TOML 1.0, as valid documents.
    static let valid: [String] = [
        "bare_key-1 = 1\n\"quoted key\" = 2\n'literal \"key\"' = 3\n\"\" = 4\na . b.  \"c.d\" = 5\n1234 = 6\n\"\\u00e9\" = 7\n",
        #"escapes = "\b\t\n\f\r\"\\ \u00E9 \U0001F600""# + "\n",
        "tab = \"a\tb\"\nliteral = 'C:\\Users\\nodejs\\templates'\n",
        "basic = \"\"\"\nRoses\r\nViolets\"\"\"\n",
        "folded = \"\"\"\\\n    The quick \\\n\n    fox.\\\n  \"\"\"\n",
        "quotes = \"\"\"Here are two quotation marks: \"\". Three: \"\"\\\".\"\"\"\"\"\n",
        "literal = '''\nThe first newline is\ntrimmed in raw strings.\n   \\n stays '' '''\nquoted = ''''That,' she said.''''\n",
        "empty1 = \"\"\nempty2 = ''\nempty3 = \"\"\"\"\"\"\nempty4 = ''''''\n",
        "a = +99\nb = -17\nc = 0\nd = 1_000_000\ne = 0xDEAD_beef\nf = 0o755\ng = 0b1101_0110\nk = -0\n",
        "h = 9223372036854775807\ni = -9223372036854775808\nj = 0x7fffffffffffffff\n",
        "a = +1.0\nb = -0.01\nc = 5e+22\nd = 1e06\ne = -2E-2\nf = 6.626e-34\ng = 224_617.445_991_228\n",
        "h = inf\ni = -inf\nj = nan\nk = -nan\nl = +inf\nm = +nan\nn = -0.0\no = 0e0\n",
        "t = true\nf = false\n",
        "odt1 = 1979-05-27T07:32:00Z\nodt2 = 1979-05-27T00:32:00-07:00\nodt3 = 1979-05-27T00:32:00.999999-07:00\n",
        "odt4 = 1979-05-27 07:32:00Z\nodt5 = 1979-05-27t07:32:00z\nodt6 = 1979-05-27 00:32:00.5+05:30\n",
        "ldt1 = 1979-05-27T07:32:00\nldt2 = 1979-05-27T00:32:00.999999\nld = 1979-05-27\nleap = 2024-02-29\n",
        "lt1 = 07:32:00\nlt2 = 00:32:00.999999\nlt3 = 23:59:59.123456789\n",
        "mixed = [ 1, \"two\", 3.0, [4, [5]], { six = 6 }, true, 1979-05-27 ]\n",
        "spread = [ # a comment\n  1,\n  2, # another\n]\nempty = []\nnested = [[], [[]]]\n",
        "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n\n[fruit.apple.texture]\nsmooth = true\n",
        "[x.y.z]\nw = 1\n[x]\nv = 2\n",
        "[[fruits]]\nname = \"apple\"\n[fruits.physical]\ncolor = \"red\"\n[[fruits.varieties]]\nname = \"red delicious\"\n"
            + "[[fruits.varieties]]\nname = \"granny smith\"\n[[fruits]]\nname = \"banana\"\n",
        "[inline]\npoint = { x = 1, y.z = 2 }\nempty = {}\nnested = { a = { b = { c = [1, { d = 2 }] } } }\n",
        "points = [ { x = 1, y = 2, z = 3 },\n           { x = 7, y = 8, z = 9 } ]\n",
        "\u{FEFF}[a]\r\nb = 1 # c\r\nc = \"d\"\r\n",
        "[a]\nb.c = 1\n[a.b.d]\ne = 2\n",
        "\t a \t= \t1 \t# blanks\n[ q . r ]\n[[ s ]]\n",
        "a = { b = [\n 1,\n 2 ] }\n",
        "# only a comment",
        "",
        "key = \"value\" # comment with \"quotes\" and 'apostrophes' and # hashes\n",
        "[[a.b]]\nc = 1\n[a]\nd = 2\n",
        "'quoted \"header\"' = 1\n[\"a b\".'c.d']\ne = 1\n",
    ]

    /// Documents that TOML 1.0 refuses (none of the two shapes that stop toml++: a header starting with no key, and
    /// '}' where an array expects a value; our unit tests cover those).
    static let invalid: [String] = [
        "a = 1\na = 2\n", "[a]\nb = 1\n[a]\n", "[fruit]\napple.color = \"red\"\n[fruit.apple]\n",
        "[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n", "a = { x = 1 }\na.y = 2\n", "a = { x = 1 }\n[a]\n", "a = { x = 1 }\n[a.b]\n",
        "a = [1]\n[[a]]\n", "[a]\n[[a]]\n", "[[a]]\n[a]\n", "a = 1\n[a.b]\n", "a = 1\na.b = 2\n",
        "a = { x = 1, x = 2 }\n", "[[a]]\nb = 1\nb = 2\n",
        "a = 012\n", "a = 9223372036854775808\n", "a = -9223372036854775809\n", "a = 0x8000000000000000\n",
        "a = 1__2\n", "a = _1\n", "a = 1_\n", "a = 0x_1\n", "a = +0x1\n", "a = 0b102\n", "a = 0O7\n",
        "a = 1.\n", "a = .5\n", "a = 1.e5\n", "a = 1e\n", "a = 01.5\n", "a = 1.5_\n", "a = infinity\n",
        "a = 2021-02-30\n", "a = 2023-02-29\n", "a = 2021-13-01\n", "a = 1979-05-27T24:00:00\n", "a = 07:32\n",
        "a = 1979-05-27T07:32:00+5:00\n", "a = 1979-05-27T07:32:00.\n", "a = 07:32:00Z\n",
        "a = \"abc\n", "a = 'abc\n", "a = \"\"\"abc\n\n", "a = '''abc''''''\n", "a = \"\\x41\"\n", "a = \"\\e\"\n",
        "a = \"\\uD800\"\n", "a = \"\\U00110000\"\n", "a = \"\\u12\"\n", "a = \"a\u{01}b\"\n", "a = \"a\u{7F}b\"\n",
        "a = \"\"\"a\u{0B}b\"\"\"\n", "a = 1 # comment \u{07}\n", "\"\"\"a\"\"\" = 1\n",
        "a = [1 2]\n", "a = [1,\n", "a = { x = 1,\n y = 2 }\n", "a = { x = 1\n}\n", "a = { x = 1, }\n",
        "a = { x = 1 y = 2 }\n", "[a\n", "[]\n", "[a.]\n", "[[a]\n", "[a b]\n", "a =\n", "a\n", "= 1\n",
        "a = 1 b = 2\n", "a = truex\n", "a = TRUE\n", "a = bare\n", "[a] b = 1\n",
    ]

    @Test func everyTOMLFileInTheRepositoryReadsTheSame() throws {
        let root = Broker.repoRoot
        // Walked, not `git ls-files`: CI runs on an archive of the commit, which has no .git.
        let skipped: Set<String> = [".build", ".venv", ".git", ".broker", "node_modules"]
        var files: [String] = []
        let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isDirectoryKey])
        while let url = walker?.nextObject() as? URL {
            if skipped.contains(url.lastPathComponent) {
                walker?.skipDescendants()
            } else if url.pathExtension == "toml" {
                files.append(String(url.path.dropFirst(root.path.count + 1)))
            }
        }
        try #require(!files.isEmpty, "no .toml file found under \(root.path)")
        for file in files {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            let ours = Self.ours(text), theirs = Self.theirs(text)
            #expect(!ours.isRefused, "\(file): \(ours)")
            #expect(ours == theirs, "\(file)")
        }
    }

    @Test(arguments: valid) func validDocumentsGiveEqualTrees(_ text: String) {
        let ours = Self.ours(text), theirs = Self.theirs(text)
        #expect(!ours.isRefused, "ours refused \(text.debugDescription): \(ours)")
        #expect(!theirs.isRefused, "toml++ refused \(text.debugDescription): \(theirs)")
        #expect(ours == theirs, "\(text.debugDescription)\nours:   \(ours)\ntheirs: \(theirs)")
    }

    /// Where TOMLKit is wrong per TOML 1.0: it reads strings through a C string, so `\u0000` (a valid escape) cuts
    /// the string there; we keep the NUL.
    @Test func aNULEscapeIsKeptWhereTOMLKitCutsTheString() {
        let text = "a = \"x\\u0000y\"\n"
        #expect(Self.ours(text) == .tree(.table(["a": .string("x\u{0}y")])))
        #expect(Self.theirs(text) == .tree(.table(["a": .string("x")])), "if toml++/TOMLKit keep it now, fold this into valid")
    }

    /// With TOMLKit, `env = { A = "x\u0000y" }` gave "x" and the task ran with A=x; the exec handler's NUL check now
    /// sees the NUL and the file is refused with its line and key.
    @Test func aNULInAnExecEnvironmentValueIsRefusedNotCut() {
        let text = "[tasks.t]\ncommand = [\"/bin/true\"]\nenv = { A = \"x\\u0000y\" }\n"
        do {
            _ = try TasksConfiguration.parse(text, file: "nul.toml", environment: [:])
            Issue.record("accepted")
        } catch let errors as ConfigErrors {
            #expect(errors.errors.map(\.description) == ["nul.toml:3: tasks.t.env.A: an environment variable's value cannot contain NUL"])
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// Dates in a schedule's `args` and `kwargs` reach the task as text: the text TOMLKit gave (toml++'s spelling),
    /// not the file's (`t` or a space for `T`, `z`, a `-00:00` offset, trailing zeros in the fraction).
    @Test func datesBecomeTheJSONTextTOMLKitGave() throws {
        let values = [
            "1979-05-27 07:32:00.500z", "1979-05-27t00:32:00-00:00", "1979-05-27T00:32:00.999999-07:30",
            "1979-05-27T07:32:00+05:45", "1979-05-27", "07:32:00.120", "00:00:00", "0099-01-01T23:59:59.000000001Z",
        ]
        for value in values {
            let text = "a = \(value)\n"
            let ours = try AMQPTasks.TOMLParser.parse(text)["a"]
            let theirs = try TOMLKit.TOMLTable(string: text)["a"]
            #expect(ours.map { JSONValue(toml: $0) } == .string(theirs?.debugDescription ?? "none"), "\(value)")
        }
        // Except where TOMLKit was wrong: it wrote a local date-time with a Z, moving it to UTC; it stays local.
        for (value, json) in [("1979-05-27t07:32:00", "1979-05-27T07:32:00"), ("1979-05-27 07:32:00.10", "1979-05-27T07:32:00.1")] {
            let text = "a = \(value)\n"
            #expect(try AMQPTasks.TOMLParser.parse(text)["a"].map { JSONValue(toml: $0) } == .string(json))
            #expect(try TOMLKit.TOMLTable(string: text)["a"]?.debugDescription == json + "Z", "if TOMLKit keeps it local now, fold this in above")
        }
    }

    @Test(arguments: invalid) func invalidDocumentsAreRefusedByBoth(_ text: String) {
        #expect(Self.ours(text).isRefused, "ours accepted \(text.debugDescription): \(Self.ours(text))")
        #expect(Self.theirs(text).isRefused, "toml++ accepted \(text.debugDescription): \(Self.theirs(text))")
    }
}

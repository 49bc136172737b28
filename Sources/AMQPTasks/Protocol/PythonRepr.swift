import AMQP
import FoundationEssentials

/// Python's `repr()` of JSON values, as Celery puts it in `argsrepr`/`kwargsrepr` and in events.
enum PythonRepr {
    /// A whole double below 1e16 as Python writes it (`1.0`, `-0.0`, `1000000000000000.0`): `%.1f`'s text without a
    /// `vsnprintf` per number. Callers check `d == d.rounded() && abs(d) < 1e16` (finite, exact in a `UInt64`).
    static func wholeFloat(_ d: Double) -> String {
        (d.sign == .minus ? "-" : "") + String(UInt64(d.magnitude)) + ".0"
    }

    static func repr(_ value: JSONValue) -> String {
        switch value {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return d == d.rounded() && abs(d) < 1e16 ? wholeFloat(d) : String(d)
        case .string(let s): return quote(s)
        case .array(let a): return "[" + a.map(repr).joined(separator: ", ") + "]"
        case .object(let o):
            return "{" + o.sorted { $0.key < $1.key }.map { "\(quote($0.key)): \(repr($0.value))" }
                .joined(separator: ", ") + "}"
        }
    }

    /// Positional arguments as a tuple: `(2, 3)`, `(1,)`, `()`.
    static func tuple(_ args: [JSONValue]) -> String {
        args.count == 1 ? "(\(repr(args[0])),)" : "(" + args.map(repr).joined(separator: ", ") + ")"
    }

    static func quote(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for ch in s {
            switch ch {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case quote: out += "\\\(quote)"
            default: out.append(ch)
            }
        }
        out.append(quote)
        return out
    }
}

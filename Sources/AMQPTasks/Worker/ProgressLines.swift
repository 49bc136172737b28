import FoundationEssentials

/// Splits what an exec command writes to its progress descriptor into lines, each at most `maxLine` bytes: a longer
/// line is dropped whole (reported as `.tooLong` once it ends), so a command that never writes a newline costs at
/// most `maxLine` bytes of memory.
struct ProgressLines {
    enum Line: Equatable {
        case line(Data)
        /// A line of `bytes` bytes, over the limit, dropped.
        case tooLong(bytes: Int)
    }

    let maxLine: Int
    private var buffer = Data()
    /// Bytes of the current line dropped so far, when it is over the limit.
    private var dropping: Int?

    init(maxLine: Int = 65536) {
        self.maxLine = maxLine
    }

    /// The lines that `bytes` completes, without their newline; empty lines are skipped.
    mutating func feed<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [Line] {
        var lines: [Line] = []
        var rest = bytes[...]
        while let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
            take(rest[..<newline])
            if let line = endLine() { lines.append(line) }
            rest = rest[rest.index(after: newline)...]
        }
        take(rest)
        return lines
    }

    /// The last line, when the command ended without a newline after it.
    mutating func finish() -> Line? { endLine() }

    private mutating func take<Part: Collection<UInt8>>(_ part: Part) {
        if let dropped = dropping {
            dropping = dropped + part.count
        } else if buffer.count + part.count > maxLine {
            dropping = buffer.count + part.count
            buffer = Data()
        } else {
            buffer.append(contentsOf: part)
        }
    }

    private mutating func endLine() -> Line? {
        defer {
            buffer = Data()
            dropping = nil
        }
        if let dropped = dropping { return .tooLong(bytes: dropped) }
        let trimmed = buffer.filter { $0 != UInt8(ascii: "\r") }
        return trimmed.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) ? nil : .line(buffer)
    }
}

/// What one progress line of an exec command means: `{"state": "NAME", "meta": {...}}` reports state NAME with that
/// meta (`meta` may be left out: null); any other JSON object is the meta of a `PROGRESS` state. Anything else (not
/// JSON, not an object, a `state` that is not a non-empty string or is a final state) is refused with the reason.
enum ProgressLine {
    static func parse(_ line: Data) -> Result<(TaskState, JSONValue), ProgressLineError> {
        guard let json = try? JSONValue.parse(line) else {
            return .failure(ProgressLineError("is not JSON"))
        }
        guard let object = json.objectValue else {
            return .failure(ProgressLineError("is JSON but not an object ({\"current\": 3, \"total\": 10} or {\"state\": \"NAME\", \"meta\": {...}})"))
        }
        guard let stateValue = object["state"] else { return .success((.progress, json)) }
        guard let name = stateValue.stringValue, let state = TaskState(rawValue: name) else {
            return .failure(ProgressLineError("has a \"state\" that is not a non-empty string"))
        }
        guard !state.isFinal else {
            return .failure(ProgressLineError("reports \(state), which only the command's exit may: exit 0 with the result on stdout, or non-zero"))
        }
        return .success((state, object["meta"] ?? .null))
    }
}

/// Why a progress line was ignored.
struct ProgressLineError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

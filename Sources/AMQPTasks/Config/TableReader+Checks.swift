import FoundationEssentials

/// Range checks shared by the section readers: each reports a value outside its range and gives nil.
extension TableReader {
    /// Seconds are at most about 31 years: `inf`, `nan` and 1e30 would trap where they become a `Duration`.
    static let largestSeconds = HeaderReader.longestTimeLimit

    /// The non-empty string `name`; reports it missing or empty.
    func required(_ name: String) -> String? {
        if table[name] == nil {
            context.error(path, "missing \(name)")
            return nil
        }
        guard let value = string(name) else { return nil }
        guard !value.isEmpty else {
            context.error(key(name), "must not be empty")
            return nil
        }
        return value
    }

    /// Reports `value` (read from `name`) when it is longer than `maxBytes` bytes of UTF-8: AMQP's short strings
    /// (names, routing keys) hold 255, and rabbitmq-c fails one longer only while writing its frame, which drops the
    /// whole connection (a worker would reconnect and fail again, forever).
    func checkShortString(_ name: String, _ value: String, maxBytes: Int = 255, because why: String = "") {
        let bytes = value.utf8.count
        guard bytes > maxBytes else { return }
        context.error(key(name), "must be at most \(maxBytes) bytes\(why), got \(bytes)")
    }

    /// A size in bytes from 1 KiB to 512 MiB (RabbitMQ refuses messages over 512 MiB whatever its settings).
    func byteCount(_ name: String) -> Int? {
        guard let bytes = int(name) else { return nil }
        guard (1024...(512 << 20)).contains(bytes) else {
            context.error(key(name), "expected a size in bytes from 1024 to 536870912 (512 MiB), got \(bytes)")
            return nil
        }
        return bytes
    }

    /// A whole number ≥ 0.
    func nonNegativeInt(_ name: String) -> Int? {
        guard let value = int(name) else { return nil }
        guard value >= 0 else {
            context.error(key(name), "expected a number ≥ 0, got \(value)")
            return nil
        }
        return value
    }

    /// A number of seconds ≥ 0, finite and at most `largestSeconds`, as a `Duration`.
    func nonNegativeSeconds(_ name: String) -> Duration? {
        guard let seconds = number(name) else { return nil }
        guard seconds.isFinite, seconds <= Self.largestSeconds else {
            context.error(key(name), "expected a finite number, at most \(Int(Self.largestSeconds)), got \(seconds)")
            return nil
        }
        guard seconds >= 0 else {
            context.error(key(name), "expected a number ≥ 0, got \(seconds)")
            return nil
        }
        return .seconds(seconds)
    }

    /// A number (of seconds, or a base) > 0, finite and at most `largestSeconds`.
    func positive(_ name: String, _ value: Double?) -> Double? {
        guard let value else { return nil }
        guard value.isFinite, value <= Self.largestSeconds else {
            context.error(key(name), "expected a finite number, at most \(Int(Self.largestSeconds)), got \(value)")
            return nil
        }
        guard value > 0 else {
            context.error(key(name), "expected a number > 0, got \(value)")
            return nil
        }
        return value
    }

    /// A number of seconds > 0 (see `positive`) as a `Duration`.
    func positiveSeconds(_ name: String) -> Duration? {
        positive(name, number(name)).map { .seconds($0) }
    }

    /// `value` when it lies within `limits`; otherwise an error naming the range.
    func within(_ name: String, _ value: Double?, _ limits: ClosedRange<Double>, _ unit: String) -> Double? {
        guard let value else { return nil }
        guard limits.contains(value) else {
            func show(_ n: Double) -> String { n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : "\(n)" }
            context.error(key(name), "expected \(show(limits.lowerBound)) to \(show(limits.upperBound)) \(unit), got \(show(value))")
            return nil
        }
        return value
    }
}

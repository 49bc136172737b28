import AMQP
import FoundationEssentials

/// `[worker] consumer_timeout`: the broker's `consumer_timeout` as the operator knows it, or off.
///
/// Written as RabbitMQ's documentation says it: `"30m"`, `"90s"`, `"2h"`, `"1800000ms"`, or a number of seconds;
/// `"off"` or `0` turns custody off. At least `CustodySchedule.shortestTimeout` (10 s) otherwise.
public struct ConsumerTimeoutSetting: Sendable, Equatable {
    /// Nil when off.
    public let duration: Duration?

    /// Reads a spelling, or says why it is not one.
    public static func parse(_ text: String) -> Result<ConsumerTimeoutSetting, ConsumerTimeoutSettingError> {
        let trimmed = text.trimmingWhitespace().lowercased()
        if trimmed == "off" || trimmed == "0" { return .success(ConsumerTimeoutSetting(duration: nil)) }
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            let number = trimmed.dropLast(unit.suffix.count).trimmingWhitespace()
            guard let value = Double(number), value.isFinite else { break }
            return seconds(value * unit.seconds, spelled: text)
        }
        if let value = Double(trimmed), value.isFinite { return seconds(value, spelled: text) }
        return .failure(
            ConsumerTimeoutSettingError(
                "expected a duration such as \"30m\", \"90s\", \"2h\" or \"1800000ms\", or \"off\", got \"\(text)\""))
    }

    /// A number of seconds (a TOML number).
    public static func seconds(_ value: Double, spelled: String? = nil) -> Result<
        ConsumerTimeoutSetting, ConsumerTimeoutSettingError
    > {
        if value == 0 { return .success(ConsumerTimeoutSetting(duration: nil)) }
        let shortest = CustodySchedule.shortestTimeout.secondsValue
        guard value >= shortest, value <= 366 * 86400 else {
            return .failure(
                ConsumerTimeoutSettingError(
                    "expected \(Int(shortest)) s to 366 days (or \"off\"), got \(spelled.map { "\"\($0)\"" } ?? "\(value) s")"))
        }
        return .success(ConsumerTimeoutSetting(duration: .seconds(value)))
    }
}

/// Why a `[worker] consumer_timeout` value was not taken.
public struct ConsumerTimeoutSettingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension TableReader {
    /// `[worker] consumer_timeout` (see `ConsumerTimeoutSetting`): a string or a number of seconds.
    func consumerTimeout(_ name: String) -> ConsumerTimeoutSetting? {
        guard let value = table[name] else { return nil }
        let parsed: Result<ConsumerTimeoutSetting, ConsumerTimeoutSettingError>
        if let text = value.string {
            parsed = ConsumerTimeoutSetting.parse(text)
        } else if let number = value.int.map(Double.init) ?? value.double {
            parsed = ConsumerTimeoutSetting.seconds(number)
        } else {
            context.error(key(name), "expected a duration such as \"30m\", or \"off\", got \(value.type) \(value.debugDescription)")
            return nil
        }
        switch parsed {
        case .success(let setting): return setting
        case .failure(let error):
            context.error(key(name), error.description)
            return nil
        }
    }
}

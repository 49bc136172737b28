import AMQP
import FoundationEssentials

/// Reads the headers whose type and range a worker relies on, refusing (with what was wrong) any that is off.
struct HeaderReader {
    let headers: TaskHeaders
    let invalid: (String) -> TaskMessageError

    /// The longest time limit taken as given (about 31 years); longer ones mean "no limit" in practice. The
    /// configuration file takes no longer number of seconds either.
    static let longestTimeLimit: Double = 1e9
    /// Retries above this are refused: no policy retries a task a million times, and counting on could overflow.
    static let mostRetries = 1_000_000

    func retries() throws -> Int {
        guard let value = headers.retries, !value.isVoid else { return 0 }
        guard let retries = value.intValue, (0...Self.mostRetries).contains(retries) else {
            throw invalid("'retries' must be a whole number from 0 to \(Self.mostRetries), got \(value)")
        }
        return retries
    }

    /// An ISO 8601 time header (`eta`, `expires`), or nil when absent.
    func time(_ name: String, _ value: FieldValue?) throws -> String? {
        guard let value, !value.isVoid else { return nil }
        guard let text = value.stringValue, CeleryTime.parse(text) != nil else {
            throw invalid("'\(name)' must be an ISO 8601 time such as 2026-11-25T15:22:28.144239+00:00, got \(String(describing: value).prefix(80))")
        }
        return text
    }

    /// `timelimit`: `[hard, soft]`, each null or a number of seconds, finite and not negative.
    func timeLimit() throws -> TaskMessage.TimeLimit {
        guard let value = headers.timeLimit, !value.isVoid else { return .init() }
        guard let limits = value.arrayValue, limits.count == 2 else {
            throw invalid("'timelimit' must be [hard, soft] in seconds, got \(String(describing: value).prefix(80))")
        }
        func seconds(_ limit: FieldValue) throws -> Duration? {
            if limit.isVoid { return nil }
            guard let seconds = limit.doubleValue, seconds.isFinite, seconds >= 0 else {
                throw invalid("'timelimit' values must be null or seconds, finite and not negative, got \(limit)")
            }
            return seconds > Self.longestTimeLimit ? nil : .clampedSeconds(seconds)
        }
        return .init(hard: try seconds(limits[0]), soft: try seconds(limits[1]))
    }
}

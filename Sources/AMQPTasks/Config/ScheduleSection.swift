import FoundationEssentials

/// Reads one `[schedules."NAME"]` table: `task`, exactly one of `every` and `cron` (with `timezone`), `args`,
/// `kwargs`, `queue`, `expires`.
enum ScheduleSection {
    static func read(_ r: TableReader, name: String) -> ScheduleSettings? {
        r.allowOnly(["task", "every", "cron", "timezone", "args", "kwargs", "queue", "expires"])
        let context = r.context
        let task = r.required("task")
        let timing = readTiming(r)
        var args: [JSONValue] = []
        if let value = r.table["args"] {
            if let array = value.array {
                args = array.map { JSONValue(toml: $0) }
            } else {
                context.error(r.key("args"), "expected a list, e.g. args = [2, 3], got \(value.type)")
            }
        }
        var kwargs: [String: JSONValue] = [:]
        if let value = r.table["kwargs"] {
            if let table = value.table {
                for key in table.keys { kwargs[key] = JSONValue(toml: table[key]!) }
            } else {
                context.error(r.key("kwargs"), "expected a table, e.g. kwargs = { to = \"ops\" }, got \(value.type)")
            }
        }
        let queue = r.string("queue")
        let expires = duration(r, "expires")
        guard let task, let timing else { return nil }
        return ScheduleSettings(
            name: name, task: task, timing: timing, args: args, kwargs: kwargs, queue: queue, expires: expires)
    }

    private static func readTiming(_ r: TableReader) -> ScheduleTiming? {
        let context = r.context
        let every = duration(r, "every")
        let cron = r.string("cron")
        let zoneName = r.string("timezone")
        switch (r.table["every"] != nil, r.table["cron"] != nil) {
        case (true, true):
            context.error(r.path, "give either every or cron, not both")
            return nil
        case (false, false):
            context.error(r.path, "missing every (e.g. every = \"5m\") or cron (e.g. cron = \"0 3 * * *\")")
            return nil
        case (true, false):
            if zoneName != nil { context.error(r.key("timezone"), "timezone applies to cron only; every runs on UTC's clock") }
            guard let every else { return nil }
            let seconds = every.components.seconds
            guard every.components.attoseconds == 0, seconds >= 1 else {
                context.error(r.key("every"), "expected whole seconds, at least 1 (e.g. \"30s\", \"5m\", \"1h\")")
                return nil
            }
            return .every(seconds: Int(seconds))
        case (false, true):
            var zone = TimeZones.utc
            if let zoneName {
                let found: TimeZone?
                do {
                    found = try TimeZones.named(zoneName)
                } catch {
                    context.error(r.key("timezone"), error.description)
                    return nil
                }
                guard let named = found else {
                    context.error(r.key("timezone"), "unknown time zone \"\(zoneName)\"; expected an IANA name such as \"Europe/Paris\" or \"UTC\"")
                    return nil
                }
                zone = named
            }
            guard let cron else { return nil }
            do {
                return .cron(try CronExpression(cron, timeZone: zone))
            } catch {
                context.error(r.key("cron"), error.description)
                return nil
            }
        }
    }

    /// A duration > 0: a string with units (`"30s"`, `"5m"`, `"1h"`, `"1h30m"`) or a number of seconds.
    static func duration(_ r: TableReader, _ name: String) -> Duration? {
        guard let value = r.table[name] else { return nil }
        let seconds: Double?
        if let text = value.string {
            seconds = DurationText.seconds(in: text)
            if seconds == nil {
                r.context.error(r.key(name), "\"\(text)\" is not a duration; expected e.g. \"30s\", \"5m\", \"1h\" or \"1h30m\"")
                return nil
            }
        } else {
            seconds = r.number(name)
        }
        return r.positive(name, seconds).map { .seconds($0) }
    }
}

import FoundationEssentials

/// Reads one `[tasks."NAME"]` table into `TaskSettings`, with the exec handler's keys.
enum TaskSection {
    static func read(_ r: TableReader) -> TaskSettings {
        r.allowOnly([
            "command", "max_retries", "retry_backoff", "time_limit", "soft_time_limit", "ignore_result", "queue",
            "env", "inherit_env", "stdout_limit", "stderr_limit", "kill_timeout", "rate_limit",
            "rate_limit_scope",
        ])
        var task = TaskSettings()
        if let command = r.stringArray("command") {
            if command.isEmpty || command[0].isEmpty {
                r.context.error(r.key("command"), "expected the program and its arguments, e.g. [\"/usr/bin/convert\", \"-resize\"]")
            } else {
                task.command = command
            }
        }
        task.maxRetries = r.nonNegativeInt("max_retries")
        if let value = r.table["retry_backoff"] {
            if let enabled = value.bool {
                task.retryBackoff = enabled ? .seconds(1) : .zero
            } else {
                task.retryBackoff = r.positiveSeconds("retry_backoff")
            }
        }
        task.timeLimit = r.positiveSeconds("time_limit")
        task.softTimeLimit = r.positiveSeconds("soft_time_limit")
        task.ignoreResult = r.bool("ignore_result")
        task.queue = r.string("queue")
        task.rateLimit = readRateLimit(r)
        task.rateLimitScope = readRateLimitScope(r, limited: task.rateLimit != nil)
        readExecSettings(r, into: &task)
        return task
    }

    /// `rate_limit`: Celery's `"N/s"`, `"N/m"`, `"N/h"`, or a number of tasks per second; 0 is no limit.
    private static func readRateLimit(_ r: TableReader) -> RateLimit? {
        guard let value = r.table["rate_limit"] else { return nil }
        let text = value.string ?? value.int.map(String.init) ?? value.double.map { String($0) }
        guard let text else {
            r.context.error(r.key("rate_limit"), "expected a rate such as \"10/s\", \"100/m\" or \"2/h\"")
            return nil
        }
        do {
            return try RateLimit.parse(text)
        } catch {
            r.context.error(r.key("rate_limit"), "\(error)")
            return nil
        }
    }

    /// `rate_limit_scope`: `"worker"` (each worker keeps the limit, as Celery) or `"cluster"` (all workers together).
    private static func readRateLimitScope(_ r: TableReader, limited: Bool) -> RateLimitScope {
        guard let value = r.table["rate_limit_scope"] else { return .worker }
        guard let text = value.string, let scope = RateLimitScope(rawValue: text) else {
            let given = value.string.map { "\"\($0)\"" } ?? "a value that is not a string"
            r.context.error(
                r.key("rate_limit_scope"),
                "expected \"worker\" (each worker keeps rate_limit, as Celery) or \"cluster\" (all workers together), got \(given)")
            return .worker
        }
        if scope == .cluster && !limited && r.table["rate_limit"] == nil {
            r.context.error(r.key("rate_limit_scope"), "rate_limit_scope = \"cluster\" needs a rate_limit in the same table, such as rate_limit = \"10/s\"")
        }
        return scope
    }

    /// The exec handler's keys: `env`, `inherit_env`, `stdout_limit`, `stderr_limit`, `kill_timeout`.
    private static func readExecSettings(_ r: TableReader, into task: inout TaskSettings) {
        let context = r.context
        if let env = r.subtable("env") {
            for name in env.table.keys.sorted() {
                if let problem = ExecEnvironment.problem(withName: name, allowPrefix: false) {
                    context.error(env.key(name), problem)
                } else if let value = env.string(name) {
                    if value.contains("\0") {
                        context.error(env.key(name), "an environment variable's value cannot contain NUL")
                    } else {
                        task.env[name] = value
                    }
                }
            }
        }
        for (index, name) in (r.stringArray("inherit_env") ?? []).enumerated() {
            if let problem = ExecEnvironment.problem(withName: name, allowPrefix: true) {
                context.error("\(r.key("inherit_env"))[\(index)]", problem)
            } else {
                task.inheritEnv.append(name)
            }
        }
        if let limit = r.int("stdout_limit") {
            if limit >= 1 {
                task.stdoutLimit = limit
            } else {
                context.error(r.key("stdout_limit"), "expected a number of bytes, at least 1, got \(limit)")
            }
        }
        task.stderrLimit = r.nonNegativeInt("stderr_limit")
        task.killTimeout = r.positiveSeconds("kill_timeout")
    }
}

/// The environment an exec handler's command gets: a minimal one, not the worker's.
///
/// The worker's environment holds secrets (`AMQP_URL` with its password, cloud credentials) that a command, or what
/// it prints as its result, must not see. A command gets only the variables that describe the machine, the user and
/// the locale (`passedByDefault`), then those its task's configuration names in `inherit_env`, then its `env` table.
enum ExecEnvironment {
    /// Passed from the worker when set there. A trailing `*` matches a prefix.
    static let passedByDefault = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR"]

    /// PATH when the worker has none.
    static let fallbackPath = "/usr/local/bin:/usr/bin:/bin"

    /// The command's environment, from the worker's `environment` and the task's options.
    static func make(for options: ExecOptions, from environment: [String: String]) -> [String: String] {
        let patterns = passedByDefault + options.inheritedEnvironment
        var result = environment.filter { name, _ in patterns.contains { matches($0, name) } }
        if result["PATH"] == nil { result["PATH"] = fallbackPath }
        result.merge(options.environment) { _, configured in configured }
        return result
    }

    /// `NAME` matches itself; `PREFIX*` matches names starting with PREFIX.
    static func matches(_ pattern: String, _ name: String) -> Bool {
        pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
    }

    /// Why `name` cannot be an environment variable's name (or pattern, with `allowPrefix`), or nil when it can.
    static func problem(withName name: String, allowPrefix: Bool) -> String? {
        let body = allowPrefix && name.hasSuffix("*") ? String(name.dropLast()) : name
        if body.isEmpty { return "an environment variable needs a name" }
        if body.contains("=") || body.contains("\0") || body.contains("*") {
            return "\"\(name)\" is not an environment variable name (no =, NUL\(allowPrefix ? ", or * except at the end" : " or *"))"
        }
        return nil
    }
}

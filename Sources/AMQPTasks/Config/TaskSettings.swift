/// `[tasks."NAME"]`: settings of one task.
public struct TaskSettings: Sendable, Hashable {
    /// Run the task as this process (argument vector; no shell): an exec handler.
    public var command: [String]?
    public var maxRetries: Int?
    /// Exponential backoff base (`retry_backoff = true` is 1 s); `.zero` (`retry_backoff = false`) means fixed
    /// delays.
    public var retryBackoff: Duration?
    /// Hard time limit: the task fails with `TimeLimitExceeded` when it runs longer.
    public var timeLimit: Duration?
    public var softTimeLimit: Duration?
    public var ignoreResult: Bool?
    /// Send this task to this queue (overrides `[routes]`).
    public var queue: String?
    /// Exec handler: variables set for the command (`env = { NAME = "value" }`), over its minimal environment.
    public var env: [String: String] = [:]
    /// Exec handler: the worker's variables the command also gets (`inherit_env = ["NAME", "PREFIX*"]`); without
    /// them it sees only PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ and TMPDIR (see `ExecEnvironment`).
    public var inheritEnv: [String] = []
    /// Exec handler: bytes of stdout kept as the result (default 1 MiB); more fails the task with `ExecOutputTooLarge`.
    public var stdoutLimit: Int?
    /// Exec handler: bytes of stderr kept, the last ones, as a failure's message (default 64 KiB).
    public var stderrLimit: Int?
    /// Exec handler: time between SIGTERM and SIGKILL when the worker stops the command (default 5 s).
    public var killTimeout: Duration?
    /// At most this many starts of the task per second in each worker (`rate_limit = "10/s"`, Celery's syntax).
    public var rateLimit: RateLimit?
    /// Whether `rateLimit` binds each worker (the default, as Celery) or all workers together
    /// (`rate_limit_scope = "cluster"`).
    public var rateLimitScope: RateLimitScope = .worker

    /// The settings of one task; every key of `[tasks."NAME"]` has a parameter, nil or empty meaning "not set".
    public init(
        command: [String]? = nil, maxRetries: Int? = nil, retryBackoff: Duration? = nil, timeLimit: Duration? = nil,
        softTimeLimit: Duration? = nil, ignoreResult: Bool? = nil, queue: String? = nil, env: [String: String] = [:],
        inheritEnv: [String] = [], stdoutLimit: Int? = nil, stderrLimit: Int? = nil, killTimeout: Duration? = nil,
        rateLimit: RateLimit? = nil, rateLimitScope: RateLimitScope = .worker
    ) {
        self.command = command
        self.maxRetries = maxRetries
        self.retryBackoff = retryBackoff
        self.timeLimit = timeLimit
        self.softTimeLimit = softTimeLimit
        self.ignoreResult = ignoreResult
        self.queue = queue
        self.env = env
        self.inheritEnv = inheritEnv
        self.stdoutLimit = stdoutLimit
        self.stderrLimit = stderrLimit
        self.killTimeout = killTimeout
        self.rateLimit = rateLimit
        self.rateLimitScope = rateLimitScope
    }
}

import AMQP
import Foundation
import TOMLKit

extension TasksConfiguration {
    /// Where the configuration file is: `--config PATH`, else `AMQP_TASKS_CONFIG`, else `./amqp-tasks.toml` if it
    /// exists; nil means built-in defaults.
    public static func locate(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String?
    {
        if let explicit { return explicit }
        if let fromEnvironment = environment["AMQP_TASKS_CONFIG"], !fromEnvironment.isEmpty { return fromEnvironment }
        return FileManager.default.fileExists(atPath: "amqp-tasks.toml") ? "amqp-tasks.toml" : nil
    }

    /// Reads and validates a configuration file; `AMQP_URL` in `environment` overrides `[broker] url`.
    /// Throws `ConfigErrors` listing every problem with file, line and key.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> TasksConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigErrors(errors: [ConfigError(file: path, line: nil, key: "", message: "cannot read the file")])
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path, environment: environment)
    }

    /// Parses configuration text; `file` names it in errors.
    public static func parse(
        _ text: String, file: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> TasksConfiguration {
        if let problem = TOMLPreflight.check(text) {
            throw ConfigErrors(errors: [
                ConfigError(
                    file: file, line: problem.line, key: "",
                    message: "TOML syntax: \(problem.message) (column \(problem.column))")
            ])
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigErrors(errors: [
                ConfigError(
                    file: file, line: error.source.begin.line, key: "",
                    message: "TOML syntax: \(error.description) (column \(error.source.begin.column))")
            ])
        }
        let context = ConfigContext(file: file, locator: SourceLocator(text: text))
        var config = ConfigLoader(context: context).read(root)
        config.file = file
        if let url = environment["AMQP_URL"], !url.isEmpty { config.broker.url = url }
        ConfigValidator(context: context, config: config).validate()
        if !context.errors.isEmpty { throw ConfigErrors(errors: context.errors) }
        return config
    }
}

/// Collects errors while reading, with the locator to put lines on them.
final class ConfigContext {
    let file: String
    let locator: SourceLocator
    private(set) var errors: [ConfigError] = []

    init(file: String, locator: SourceLocator) {
        self.file = file
        self.locator = locator
    }

    func error(_ path: String, _ message: String) {
        errors.append(ConfigError(file: file, line: locator.line(of: path), key: path, message: message))
    }
}

/// Reads one TOML table, checking types and reporting keys it does not know.
struct TableReader {
    let table: TOMLTable
    let path: String
    let context: ConfigContext

    func key(_ name: String) -> String {
        path.isEmpty ? SourceLocator.component(name) : "\(path).\(SourceLocator.component(name))"
    }

    /// Reports keys other than `known`.
    func allowOnly(_ known: Set<String>) {
        for name in table.keys where !known.contains(name) {
            let options = known.sorted().joined(separator: ", ")
            context.error(key(name), "unknown key; expected one of: \(options)")
        }
    }

    private func wrongType(_ name: String, _ expected: String, _ value: TOMLValueConvertible) {
        context.error(key(name), "expected \(expected), got \(value.type) \(value.debugDescription)")
    }

    func string(_ name: String) -> String? {
        guard let value = table[name] else { return nil }
        guard let string = value.string else {
            wrongType(name, "a string", value)
            return nil
        }
        return string
    }

    func int(_ name: String) -> Int? {
        guard let value = table[name] else { return nil }
        guard let int = value.int else {
            wrongType(name, "an integer", value)
            return nil
        }
        return int
    }

    func number(_ name: String) -> Double? {
        guard let value = table[name] else { return nil }
        if let int = value.int { return Double(int) }
        guard let double = value.double else {
            wrongType(name, "a number", value)
            return nil
        }
        return double
    }

    func bool(_ name: String) -> Bool? {
        guard let value = table[name] else { return nil }
        guard let bool = value.bool else {
            wrongType(name, "true or false", value)
            return nil
        }
        return bool
    }

    func stringArray(_ name: String) -> [String]? {
        guard let value = table[name] else { return nil }
        guard let array = value.array else {
            wrongType(name, "a list of strings", value)
            return nil
        }
        var strings: [String] = []
        for (index, element) in array.enumerated() {
            guard let string = element.string else {
                context.error("\(key(name))[\(index)]", "expected a string, got \(element.type) \(element.debugDescription)")
                continue
            }
            strings.append(string)
        }
        return strings
    }

    func subtable(_ name: String) -> TableReader? {
        guard let value = table[name] else { return nil }
        guard let table = value.table else {
            wrongType(name, "a table", value)
            return nil
        }
        return TableReader(table: table, path: key(name), context: context)
    }

    /// An array of tables (`[[name]]` or `name = [{...}, ...]`).
    func tables(_ name: String) -> [TableReader] {
        guard let value = table[name] else { return [] }
        guard let array = value.array else {
            wrongType(name, "a list of tables", value)
            return []
        }
        var readers: [TableReader] = []
        for (index, element) in array.enumerated() {
            let elementPath = "\(key(name))[\(index)]"
            guard let table = element.table else {
                context.error(elementPath, "expected a table, got \(element.type) \(element.debugDescription)")
                continue
            }
            readers.append(TableReader(table: table, path: elementPath, context: context))
        }
        return readers
    }

    /// AMQP arguments: strings, integers, booleans and numbers.
    func arguments(_ name: String) -> FieldTable {
        guard let arguments = subtable(name) else { return [:] }
        var table = FieldTable()
        for argument in arguments.table.keys.sorted() {
            let value = arguments.table[argument]!
            if let int = value.int {
                table[argument] = Int32(exactly: int).map(FieldValue.int32) ?? .int64(Int64(int))
            } else if let bool = value.bool {
                table[argument] = .bool(bool)
            } else if let double = value.double {
                table[argument] = .double(double)
            } else if let string = value.string {
                table[argument] = .string(string)
            } else {
                context.error(arguments.key(argument), "expected a string, integer, number or boolean")
            }
        }
        return table
    }
}

/// Turns the TOML tree into `TasksConfiguration`, reporting type errors and unknown keys.
struct ConfigLoader {
    let context: ConfigContext

    func read(_ root: TOMLTable) -> TasksConfiguration {
        let top = TableReader(table: root, path: "", context: context)
        top.allowOnly(["broker", "exchanges", "queues", "routes", "worker", "tasks"])
        var config = TasksConfiguration()
        if let broker = top.subtable("broker") { config.broker = readBroker(broker) }
        config.exchanges = top.tables("exchanges").compactMap(readExchange)
        config.queues = top.tables("queues").compactMap(readQueue)
        if let routes = top.subtable("routes") { config.routes = readRoutes(routes) }
        if let worker = top.subtable("worker") { config.worker = readWorker(worker) }
        if let tasks = top.subtable("tasks") {
            for name in tasks.table.keys {
                guard let task = tasks.subtable(name) else { continue }
                config.tasks[name] = readTask(task)
            }
        }
        return config
    }

    private func readBroker(_ r: TableReader) -> BrokerSettings {
        r.allowOnly(["url", "urls", "heartbeat", "connection_timeout", "ca_file", "cert_file", "key_file"])
        var broker = BrokerSettings()
        var urls: [(key: String, url: String)] = []
        if let url = r.string("url") {
            urls += url.split(separator: ",").map { (r.key("url"), $0.trimmingCharacters(in: .whitespaces)) }
        }
        for (index, url) in (r.stringArray("urls") ?? []).enumerated() { urls.append(("\(r.key("urls"))[\(index)]", url)) }
        if r.table["url"] != nil, r.table["urls"] != nil {
            context.error(r.key("urls"), "give url or urls (a cluster's nodes), not both")
        }
        var valid: [String] = []
        for (key, url) in urls {
            do {
                _ = try ConnectionConfiguration(url: url)
                valid.append(url)
            } catch let error as AMQPError {
                context.error(key, error.message)
            } catch {}
        }
        if !valid.isEmpty { broker.url = valid.joined(separator: ",") }
        let limits = ConnectionConfiguration.OptionLimits.self
        broker.heartbeat = within(r, "heartbeat", r.int("heartbeat").map(Double.init), limits.heartbeat, "seconds")
            .map { Int($0) }
        // In seconds here, in milliseconds in the URL; inf or 1e300 would not survive the conversion.
        broker.connectionTimeout = within(
            r, "connection_timeout", r.number("connection_timeout"),
            limits.connectionTimeout.lowerBound / 1000...limits.connectionTimeout.upperBound / 1000, "seconds")
        broker.caFile = r.string("ca_file")
        broker.certFile = r.string("cert_file")
        broker.keyFile = r.string("key_file")
        return broker
    }

    private func readExchange(_ r: TableReader) -> ExchangeDefinition? {
        r.allowOnly(["name", "type", "durable", "auto_delete", "arguments"])
        guard let name = required(r, "name") else { return nil }
        var exchange = ExchangeDefinition(name: name)
        if let type = r.string("type") {
            if ["direct", "topic", "fanout", "headers"].contains(type) || type.hasPrefix("x-") {
                exchange.type = ExchangeType(rawValue: type)
            } else {
                context.error(r.key("type"), "expected direct, topic, fanout, headers or a plugin's x- type, got \"\(type)\"")
            }
        }
        exchange.durable = r.bool("durable") ?? true
        exchange.autoDelete = r.bool("auto_delete") ?? false
        exchange.arguments = r.arguments("arguments")
        return exchange
    }

    private func readQueue(_ r: TableReader) -> QueueDefinition? {
        r.allowOnly([
            "name", "durable", "type", "dead_letter_exchange", "max_priority", "delivery_limit", "message_ttl",
            "arguments", "bindings",
        ])
        guard let name = required(r, "name") else { return nil }
        var queue = QueueDefinition(name: name)
        queue.durable = r.bool("durable") ?? true
        if let type = r.string("type") {
            if let kind = QueueDefinition.Kind(rawValue: type) {
                queue.kind = kind
            } else {
                context.error(r.key("type"), "expected \"classic\" or \"quorum\", got \"\(type)\"")
            }
        }
        queue.deadLetterExchange = r.string("dead_letter_exchange")
        if let priority = r.int("max_priority") {
            if (1...255).contains(priority) {
                queue.maxPriority = priority
            } else {
                context.error(r.key("max_priority"), "expected 1 to 255 (RabbitMQ recommends at most 10), got \(priority)")
            }
        }
        queue.deliveryLimit = positive(r, "delivery_limit", r.int("delivery_limit").map(Double.init)).map { Int($0) }
        queue.messageTTL = nonNegative(r, "message_ttl", r.int("message_ttl"))
        queue.arguments = r.arguments("arguments")
        for binding in r.tables("bindings") {
            binding.allowOnly(["exchange", "routing_key"])
            guard let exchange = required(binding, "exchange") else { continue }
            queue.bindings.append(.init(exchange: exchange, routingKey: binding.string("routing_key") ?? ""))
        }
        return queue
    }

    private func readRoutes(_ r: TableReader) -> [Route] {
        var routes: [Route] = []
        for pattern in r.table.keys {
            guard let target = r.subtable(pattern) else { continue }
            target.allowOnly(["exchange", "routing_key", "queue"])
            let queue = target.string("queue")
            let exchange = target.string("exchange")
            let routingKey = target.string("routing_key")
            switch (queue, exchange) {
            case (let queue?, nil):
                if routingKey != nil {
                    context.error(target.key("routing_key"), "a route to a queue takes no routing_key")
                }
                routes.append(Route(pattern: pattern, target: .queue(queue)))
            case (nil, let exchange?):
                routes.append(Route(pattern: pattern, target: .exchange(exchange, routingKey: routingKey ?? pattern)))
            case (.some, .some):
                context.error(target.path, "give either queue or exchange (with routing_key), not both")
            case (nil, nil):
                context.error(target.path, "give queue = \"NAME\", or exchange = \"NAME\" with routing_key")
            }
        }
        let locator = context.locator
        return routes.sorted {
            locator.position(of: "routes.\(SourceLocator.component($0.pattern))")
                < locator.position(of: "routes.\(SourceLocator.component($1.pattern))")
        }
    }

    private func readWorker(_ r: TableReader) -> WorkerSettings {
        r.allowOnly([
            "queues", "concurrency", "prefetch", "grace_period", "hostname", "send_started", "max_retries",
            "result_persistent", "max_message_size", "max_result_size", "record_attempts", "remote_control",
        ])
        var worker = WorkerSettings()
        worker.queues = r.stringArray("queues") ?? []
        if let concurrency = r.int("concurrency") {
            if concurrency >= 1 {
                worker.concurrency = concurrency
            } else {
                context.error(r.key("concurrency"), "expected a whole number of consumers, at least 1, got \(concurrency)")
            }
        }
        if let prefetch = r.int("prefetch") {
            if (1...65535).contains(prefetch) {
                worker.prefetch = prefetch
            } else {
                context.error(r.key("prefetch"), "expected 1 to 65535 unacknowledged tasks per consumer, got \(prefetch)")
            }
        }
        worker.gracePeriod = nonNegative(r, "grace_period", r.number("grace_period")) ?? 30
        worker.hostname = r.string("hostname")
        worker.sendStarted = r.bool("send_started") ?? false
        worker.resultPersistent = r.bool("result_persistent") ?? true
        worker.maxRetries = nonNegative(r, "max_retries", r.int("max_retries"))
        worker.maxMessageSize = byteCount(r, "max_message_size") ?? worker.maxMessageSize
        worker.maxResultSize = byteCount(r, "max_result_size") ?? worker.maxResultSize
        if let attempts = r.int("record_attempts") {
            if (1...100).contains(attempts) {
                worker.recordAttempts = attempts
            } else {
                context.error(r.key("record_attempts"), "expected 1 to 100 attempts, got \(attempts)")
            }
        }
        if let access = r.string("remote_control") {
            if let parsed = RemoteControlAccess(rawValue: access) {
                worker.remoteControl = parsed
            } else {
                context.error(r.key("remote_control"), "expected one of \(RemoteControlAccess.spellings), got \"\(access)\"")
            }
        }
        return worker
    }

    private func readTask(_ r: TableReader) -> TaskSettings {
        r.allowOnly([
            "command", "max_retries", "retry_backoff", "time_limit", "soft_time_limit", "ignore_result", "queue",
            "env", "inherit_env", "stdout_limit", "stderr_limit", "kill_timeout",
        ])
        var task = TaskSettings()
        if let command = r.stringArray("command") {
            if command.isEmpty || command[0].isEmpty {
                context.error(r.key("command"), "expected the program and its arguments, e.g. [\"/usr/bin/convert\", \"-resize\"]")
            } else {
                task.command = command
            }
        }
        task.maxRetries = nonNegative(r, "max_retries", r.int("max_retries"))
        if let value = r.table["retry_backoff"] {
            if let enabled = value.bool {
                task.retryBackoff = enabled ? 1 : 0
            } else {
                task.retryBackoff = positive(r, "retry_backoff", r.number("retry_backoff"))
            }
        }
        task.timeLimit = positive(r, "time_limit", r.number("time_limit"))
        task.softTimeLimit = positive(r, "soft_time_limit", r.number("soft_time_limit"))
        task.ignoreResult = r.bool("ignore_result")
        task.queue = r.string("queue")
        readExecSettings(r, into: &task)
        return task
    }

    /// The exec handler's keys: `env`, `inherit_env`, `stdout_limit`, `stderr_limit`, `kill_timeout`.
    private func readExecSettings(_ r: TableReader, into task: inout TaskSettings) {
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
        task.stderrLimit = nonNegative(r, "stderr_limit", r.int("stderr_limit"))
        task.killTimeout = positive(r, "kill_timeout", r.number("kill_timeout"))
    }

    private func required(_ r: TableReader, _ name: String) -> String? {
        if r.table[name] == nil {
            context.error(r.path, "missing \(name)")
            return nil
        }
        guard let value = r.string(name) else { return nil }
        guard !value.isEmpty else {
            context.error(r.key(name), "must not be empty")
            return nil
        }
        return value
    }

    /// A size in bytes from 1 KiB to 512 MiB (RabbitMQ refuses messages over 512 MiB whatever its settings).
    private func byteCount(_ r: TableReader, _ name: String) -> Int? {
        guard let bytes = r.int(name) else { return nil }
        guard (1024...(512 << 20)).contains(bytes) else {
            context.error(r.key(name), "expected a size in bytes from 1024 to 536870912 (512 MiB), got \(bytes)")
            return nil
        }
        return bytes
    }

    private func nonNegative<T: Comparable & Numeric>(_ r: TableReader, _ name: String, _ value: T?) -> T? {
        guard let value else { return nil }
        if let seconds = value as? Double, !(seconds.isFinite && seconds <= Self.largestSeconds) {
            context.error(r.key(name), "expected a finite number, at most \(Int(Self.largestSeconds)), got \(seconds)")
            return nil
        }
        guard value >= 0 else {
            context.error(r.key(name), "expected a number ≥ 0, got \(value)")
            return nil
        }
        return value
    }

    /// `value` when it lies within `limits`; otherwise an error naming the range.
    private func within(
        _ r: TableReader, _ name: String, _ value: Double?, _ limits: ClosedRange<Double>, _ unit: String
    ) -> Double? {
        guard let value else { return nil }
        guard limits.contains(value) else {
            func show(_ n: Double) -> String { n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : "\(n)" }
            context.error(r.key(name), "expected \(show(limits.lowerBound)) to \(show(limits.upperBound)) \(unit), got \(show(value))")
            return nil
        }
        return value
    }

    /// A number of seconds (or a base) > 0 and at most about 31 years: `inf`, `nan` and 1e30 would trap where it
    /// becomes a `Duration`.
    private func positive(_ r: TableReader, _ name: String, _ value: Double?) -> Double? {
        guard let value else { return nil }
        guard value.isFinite, value <= Self.largestSeconds else {
            context.error(r.key(name), "expected a finite number, at most \(Int(Self.largestSeconds)), got \(value)")
            return nil
        }
        guard value > 0 else {
            context.error(r.key(name), "expected a number > 0, got \(value)")
            return nil
        }
        return value
    }

    static let largestSeconds = HeaderReader.longestTimeLimit
}

/// Checks that names refer to things the file declares.
struct ConfigValidator {
    let context: ConfigContext
    let config: TasksConfiguration

    private static let builtInExchanges: Set<String> = [
        "", "amq.direct", "amq.topic", "amq.fanout", "amq.headers", "amq.match",
    ]

    func validate() {
        let exchanges = Set(config.exchanges.map(\.name)).union(Self.builtInExchanges)
        let queues = Set(config.queues.map(\.name))
        duplicates(config.exchanges.map(\.name), "exchanges", "exchange")
        duplicates(config.queues.map(\.name), "queues", "queue")
        for (index, queue) in config.queues.enumerated() {
            let path = "queues[\(index)]"
            if queue.kind == .quorum, !queue.durable {
                context.error("\(path).durable", "quorum queues are always durable; remove durable = false")
            }
            if queue.deliveryLimit != nil, queue.kind != .quorum {
                context.error("\(path).delivery_limit", "delivery_limit needs type = \"quorum\"")
            }
            if let dlx = queue.deadLetterExchange, !exchanges.contains(dlx) {
                context.error("\(path).dead_letter_exchange", "exchange \"\(dlx)\" is not declared in [[exchanges]]")
            }
            for (b, binding) in queue.bindings.enumerated() where !exchanges.contains(binding.exchange) || binding.exchange.isEmpty {
                context.error(
                    "\(path).bindings[\(b)].exchange",
                    binding.exchange.isEmpty
                        ? "the default exchange \"\" cannot be bound to"
                        : "queue \(queue.name) is bound to exchange \"\(binding.exchange)\", which is not declared in [[exchanges]]")
            }
        }
        for route in config.routes {
            let path = "routes.\(SourceLocator.component(route.pattern))"
            switch route.target {
            case .queue(let queue) where !queues.contains(queue):
                context.error("\(path).queue", "route to queue \"\(queue)\", which is not declared in [[queues]]")
            case .exchange(let exchange, _) where !exchanges.contains(exchange):
                context.error("\(path).exchange", "route to exchange \"\(exchange)\", which is not declared in [[exchanges]]")
            default: break
            }
        }
        for (index, queue) in config.worker.queues.enumerated() where !queues.contains(queue) {
            context.error("worker.queues[\(index)]", "queue \"\(queue)\" is not declared in [[queues]]")
        }
        for (name, task) in config.tasks {
            if let queue = task.queue, !queues.contains(queue) {
                context.error(
                    "tasks.\(SourceLocator.component(name)).queue", "queue \"\(queue)\" is not declared in [[queues]]")
            }
        }
    }

    private func duplicates(_ names: [String], _ section: String, _ what: String) {
        var seen: Set<String> = []
        for (index, name) in names.enumerated() where !seen.insert(name).inserted {
            context.error("\(section)[\(index)].name", "\(what) \"\(name)\" is declared twice")
        }
    }
}

import AMQP
import FoundationEssentials

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

    /// Reads and validates a configuration file; `AMQP_URL` in `environment` replaces the addresses and credentials
    /// of `[broker] url` (not its heartbeat, timeout or TLS files: see `BrokerSettings.replaceAddresses(withURLs:)`).
    /// Throws `ConfigErrors` listing every problem with file, line and key.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> TasksConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigErrors(errors: [ConfigError(file: path, line: nil, key: "", message: "cannot read the file")])
        }
        return try parse(try text(of: data, file: path), file: path, environment: environment)
    }

    /// The file's bytes as text; TOML is UTF-8, and a byte that is not is refused with its line (decoding it would
    /// silently turn it into U+FFFD, in a password or a queue name).
    static func text(of bytes: some Collection<UInt8>, file: String) throws -> String {
        var line = 1
        var parser = Unicode.UTF8.ForwardParser()
        var input = bytes.makeIterator()
        while true {
            switch parser.parseScalar(from: &input) {
            case .valid(let scalar):
                if scalar.count == 1, scalar.first == 0x0A { line += 1 }
            case .error:
                throw ConfigErrors(errors: [
                    ConfigError(
                        file: file, line: line, key: "",
                        message: "TOML syntax: the file is not UTF-8 text (a byte on this line is not UTF-8); save it as UTF-8")
                ])
            case .emptyInput:
                return String(decoding: bytes, as: UTF8.self)
            }
        }
    }

    /// Parses configuration text; `file` names it in errors.
    public static func parse(
        _ text: String, file: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> TasksConfiguration {
        let root: TOMLTable
        do throws(TOMLParseError) {
            root = try TOMLParser.parse(text)
        } catch {
            throw ConfigErrors(errors: [
                ConfigError(
                    file: file, line: error.line, key: "", message: "TOML syntax: \(error.message) (column \(error.column))")
            ])
        }
        let context = ConfigContext(file: file, locator: SourceLocator(text: text))
        var config = ConfigLoader(context: context).read(root)
        config.file = file
        if let url = environment["AMQP_URL"], !url.isEmpty {
            do {
                try config.broker.replaceAddresses(withURLs: url)
            } catch let error as AMQPError {
                // Not the file's mistake: name the variable, not a line of the file.
                context.add(ConfigError(file: "environment", line: nil, key: "AMQP_URL", message: error.message))
            }
        }
        ConfigValidator(context: context, config: config).validate()
        if !context.errors.isEmpty { throw ConfigErrors(errors: context.errors) }
        return config
    }
}

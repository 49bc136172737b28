import FoundationEssentials

/// Collects errors while reading, with the locator to put lines on them.
final class ConfigContext {
    let file: String
    let locator: SourceLocator
    private(set) var errors: [ConfigError] = []
    /// `[worker] queues` as the file gives them (nil when it does not): the validator checks these, not the default.
    var workerQueuesInFile: [String]?

    init(file: String, locator: SourceLocator) {
        self.file = file
        self.locator = locator
    }

    func error(_ path: String, _ message: String) {
        errors.append(ConfigError(file: file, line: locator.line(of: path), key: path, message: message))
    }

    /// An error about something outside the file (an environment variable).
    func add(_ error: ConfigError) {
        errors.append(error)
    }
}

import Foundation

/// The test broker's control script, `Deploy/broker ctl` (rabbitmqctl against the node `Deploy/broker start` runs),
/// for both test targets: AMQPTests' `TestBroker.ctl` and AMQPTasksTests' `Broker.ctl`.
public enum BrokerControl {
    /// The repository's root, from this file's place in it (Tests/BrokerControl/).
    public static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Runs `Deploy/broker ctl ARGUMENTS`; returns its exit status and what it printed (stdout and stderr).
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = repoRoot.appendingPathComponent("Deploy/broker")
        process.arguments = ["ctl"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}

import AMQP
import BrokerControl
import Foundation
import Testing

/// Where the tests find the local broker that `Deploy/broker start` runs (`Deploy/test` starts it first).
enum TestBroker {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let port = Int(ProcessInfo.processInfo.environment["AMQP_BROKER_PORT"] ?? "") ?? 5672
    static let tlsPort = Int(ProcessInfo.processInfo.environment["AMQP_BROKER_TLS_PORT"] ?? "") ?? 5671
    static let directory = ProcessInfo.processInfo.environment["AMQP_BROKER_DIR"]
        .map { URL(fileURLWithPath: $0) } ?? repoRoot.appendingPathComponent(".broker")
    static let url = "amqp://guest:guest@127.0.0.1:\(port)/%2f"

    static func tlsFile(_ name: String) -> String {
        directory.appendingPathComponent("tls").appendingPathComponent(name).path
    }

    static func connect(heartbeat: Duration? = nil, name: String = #function) async throws -> Connection {
        var configuration = try ConnectionConfiguration(url: url)
        if let heartbeat { configuration.heartbeat = heartbeat }
        configuration.connectionName = "test: \(name)"
        return try await Connection.open(configuration)
    }
}

/// A name no other test uses, so tests can run in parallel on one broker.
func uniqueName(_ prefix: String = "test") -> String {
    "\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
}

struct TimedOut: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "timed out after \(seconds) s" }
}

/// Runs `body`, failing with `TimedOut` if it takes longer than `seconds`: a broken broker must fail a test,
/// never hang the suite.
func withTimeout<T: Sendable>(
    _ seconds: Double, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimedOut(seconds: seconds)
        }
        let result = try await group.next()!
        group.cancelAll()
        return result
    }
}

/// Expects `body` to throw an `AMQPError` and returns it.
func expectAMQPError(
    _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
) async -> AMQPError? {
    do {
        try await body()
        Issue.record("expected an AMQPError, but the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as AMQPError {
        return error
    } catch {
        Issue.record("expected an AMQPError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension TestBroker {
    /// Runs `Deploy/broker ctl ARGUMENTS` (rabbitmqctl against the test node) and returns its output; throws when
    /// it fails, so a test that needs it fails too.
    @discardableResult
    static func ctl(_ arguments: [String]) throws -> String {
        let (status, text) = try BrokerControl.run(arguments)
        guard status == 0 else {
            throw BrokerControlFailed(arguments: arguments, output: text)
        }
        return text
    }
}

/// `Deploy/broker ctl` failed; what it printed says why.
struct BrokerControlFailed: Error, CustomStringConvertible {
    let arguments: [String]
    let output: String
    var description: String { "Deploy/broker ctl \(arguments.joined(separator: " ")) failed: \(output)" }
}

import AMQPTasksFuzzing
import Foundation
import Testing

/// Every input in Tests/Fuzz/regressions once crashed a decoder under the fuzzer (Tests/Fuzz/run); each must now
/// go through `FuzzTargets.run` (which also checks round trips) without stopping the process.
@Suite struct FuzzRegressionTests {
    static let folder = Broker.repoRoot.appendingPathComponent("Tests/Fuzz/regressions")

    @Test func everyInputThatOnceCrashedIsHandled() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).sorted()
        #expect(!names.isEmpty, "Tests/Fuzz/regressions holds the inputs the fuzzer found")
        for name in names {
            FuzzTargets.run(try Data(contentsOf: Self.folder.appendingPathComponent(name)))
        }
    }

    /// The seed shapes of each decoder are accepted, so the round trips behind them really run.
    @Test func eachDecoderAcceptsItsSeedShape() {
        #expect(FuzzTargets.run(FuzzTargets.input(decoder: 0, Data(#"{"task": "demo.add", "id": "1", "retries": 0}"#.utf8) + Data("\n[[1, 2], {}, {}]".utf8))))
        #expect(FuzzTargets.run(FuzzTargets.input(decoder: 1, Data(#"{"task_id": "1", "status": "SUCCESS", "result": 3}"#.utf8))))
        #expect(FuzzTargets.run(FuzzTargets.input(decoder: 2, Data("[worker]\nconcurrency = 2\n".utf8))))
        #expect(FuzzTargets.run(FuzzTargets.input(decoder: 3, Data(#"{"a": [1, 2.5, "é"]}"#.utf8))))
    }
}

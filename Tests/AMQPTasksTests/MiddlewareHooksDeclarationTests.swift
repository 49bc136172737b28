@testable import AMQPTasks
import Foundation
import Testing

/// The pipeline calls a worker's own middleware only for the hooks it declares (`HookDeclaringMiddleware.hooks`):
/// a hook implemented but not declared would silently never run. Swift cannot ask at run time whether a type
/// implements a protocol requirement or takes its default, so this reads the source: every type declared as
/// `HookDeclaringMiddleware` (or `ImmediateHooks`) in `Sources/` must declare exactly the hooks its body implements.
@Suite struct MiddlewareHooksDeclarationTests {
    /// The hook names as `MiddlewareHooks` spells them, with how a method implementing each begins.
    static let hookMethods: [(hook: String, signature: String)] = [
        ("received", "func received(_ task: TaskContext)"), ("willRun", "func willRun(_ task: TaskContext)"),
        ("run", "func run(_ task: TaskContext"), ("recorded", "func recorded(_ outcome: TaskOutcome"),
        ("rejected", "func rejected(_ message: ReceivedMessage"),
    ]

    struct Declared: CustomStringConvertible {
        let type: String
        let file: String
        let declared: Set<String>
        let implemented: Set<String>
        var description: String { "\(type) (\(file)): declares \(declared.sorted()), implements \(implemented.sorted())" }
    }

    /// Every `struct|class|actor X: HookDeclaringMiddleware { … }` (or `ImmediateHooks`, which refines it) in
    /// Sources/, with the hooks its `hooks` list names and the hook methods its body (brace-matched) defines.
    static func builtIns() throws -> [Declared] {
        let sources = Broker.repoRoot.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        let declaration = try Regex(
            #"(struct|class|actor)\s+(\w+)\s*:[^{]*\b(HookDeclaringMiddleware|ImmediateHooks)\b[^{]*\{"#)
        let hooksList = try Regex(#"let hooks\s*:\s*MiddlewareHooks\s*=\s*\[([^\]]*)\]"#)
        var found: [Declared] = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in text.matches(of: declaration) {
                let name = String(match.output[2].substring ?? "")
                // The body: from the opening brace to its matching close.
                var depth = 0
                var end = match.range.upperBound
                var index = text.index(before: match.range.upperBound)
                while index < text.endIndex {
                    if text[index] == "{" { depth += 1 }
                    if text[index] == "}" {
                        depth -= 1
                        if depth == 0 { end = index; break }
                    }
                    index = text.index(after: index)
                }
                let body = String(text[match.range.upperBound..<end])
                let declared = body.firstMatch(of: hooksList).map { list in
                    Set(String(list.output[1].substring ?? "").split(separator: ",").map {
                        $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "."))
                    })
                } ?? []
                let implemented = Set(hookMethods.filter { body.contains($0.signature) }.map(\.hook))
                found.append(Declared(type: name, file: file.lastPathComponent, declared: declared, implemented: implemented))
            }
        }
        return found
    }

    @Test func everyBuiltInMiddlewareDeclaresExactlyTheHooksItImplements() throws {
        let builtIns = try Self.builtIns()
        // The reading found the worker's own middleware (else it would pass by finding nothing).
        let names = Set(builtIns.map(\.type))
        for expected in ["CeleryEventsMiddleware", "RateLimitMiddleware", "RevocationMiddleware", "TaskLogMiddleware",
                         "TaskTracingMiddleware", "TaskMetricsMiddleware"] {
            #expect(names.contains(expected), "\(expected) not found among \(names.sorted())")
        }
        for middleware in builtIns {
            #expect(!middleware.implemented.isEmpty, "no hook method found: \(middleware)")
            #expect(middleware.declared == middleware.implemented, "\(middleware)")
        }
    }

    /// The hook names read from the source are the ones `MiddlewareHooks` has: a hook added to the protocol and
    /// the option set but not to this test's table would go unchecked.
    @Test func theTestKnowsEveryHook() {
        let byName: [String: MiddlewareHooks] = [
            "received": .received, "willRun": .willRun, "run": .run, "recorded": .recorded, "rejected": .rejected,
        ]
        #expect(Set(Self.hookMethods.map(\.hook)) == Set(byName.keys))
        #expect(byName.values.reduce(into: MiddlewareHooks()) { $0.formUnion($1) } == .all)
    }
}

// An example of a task library, kept out of the AMQPTasks library: amqp-worker --demo-tasks, the example and the tests use it.
import AMQPTasks
import FoundationEssentials

/// The demo tasks of `amqp-worker --demo-tasks`: `demo.add(x, y)`, `demo.sleep(seconds)`, `demo.echo(...)`,
/// `demo.fail(message)`, `demo.flaky(fail_times)` which asks for retries until it has been retried enough,
/// `demo.trace(value)`, which answers `{"value": value, "redelivered": Bool, "worker": hostname}` so fault tests can
/// tell a redelivered run from a first one, and `demo.trace_retry(value, retries)`, which asks for `retries` retries
/// (1 s countdown each) before it answers as `demo.trace` does plus `"retries"`, so fault tests can check that a
/// retried task still answers for itself. Its RETRY reasons say the attempt and whether it was redelivered.
/// Two show time limits: `demo.stubborn_sleep(seconds)` sleeps ignoring cancellation (only the hard limit stops
/// waiting for it), and `demo.soft_sleep(seconds)` sleeps but, at its soft time limit, cleans up and answers
/// `{"soft_time_limit_exceeded": true}` instead of failing.
/// `demo.progress(steps)` reports PROGRESS `{"current": i, "total": steps}` about every 0.1 s (i from 0 to steps)
/// and answers `steps`.
/// `demo.sleep_value(value, seconds)` sleeps, then answers `value` (chord members that take a while).
/// `demo.when(value)` answers `{"value": value, "started": epoch seconds when the handler started, "eta": the
/// message's eta}`.
public enum DemoTasks {
    public struct Add: TaskArguments {
        public static let taskName = "demo.add"
        public static let positionalArgumentNames = ["x", "y"]
        public var x: Double
        public var y: Double
        public init(x: Double, y: Double) {
            self.x = x
            self.y = y
        }
    }

    public static func register(in registry: inout TaskRegistry) throws {
        try registry.register(Add.self) { arguments, _ -> JSONValue in
            let sum = arguments.x + arguments.y
            return sum == sum.rounded() && abs(sum) < 1e15 ? .int(Int(sum)) : .double(sum)
        }
        try registry.register("demo.sleep") { context in
            let seconds = context.message.args.first?.doubleValue ?? context.message.kwargs["seconds"]?.doubleValue ?? 1
            try await Task.sleep(for: .clampedSeconds(seconds))
            return .double(seconds)
        }
        try registry.register("demo.sleep_value") { context in
            let value = context.message.args.first ?? context.message.kwargs["value"] ?? .null
            let seconds = (context.message.args.dropFirst().first ?? context.message.kwargs["seconds"])?.doubleValue ?? 0
            try await Task.sleep(for: .clampedSeconds(seconds))
            return value
        }
        try registry.register("demo.stubborn_sleep") { context in
            let seconds = context.message.args.first?.doubleValue ?? context.message.kwargs["seconds"]?.doubleValue ?? 1
            // Deaf to the cancellation of the soft and the hard limit: an unstructured task is not cancelled with
            // the handler's.
            await Task { try? await Task.sleep(for: .clampedSeconds(seconds)) }.value
            return .double(seconds)
        }
        try registry.register("demo.soft_sleep") { context in
            let seconds = context.message.args.first?.doubleValue ?? context.message.kwargs["seconds"]?.doubleValue ?? 1
            do {
                try await Task.sleep(for: .clampedSeconds(seconds))
            } catch where context.softTimeLimitExceeded {
                // Celery's `except SoftTimeLimitExceeded:`: clean up, then answer for ourselves.
                return .object(["soft_time_limit_exceeded": true])
            }
            return .double(seconds)
        }
        try registry.register("demo.progress") { context in
            // Reports {"current": i, "total": steps} about every 0.1 s, then answers steps.
            let steps = (context.message.args.first ?? context.message.kwargs["steps"])?.intValue ?? 10
            for step in 0..<max(steps, 0) {
                context.reportProgress(current: step, total: steps)
                try await Task.sleep(for: .milliseconds(100))
            }
            context.reportProgress(current: steps, total: steps)
            return .int(steps)
        }
        try registry.register("demo.echo") { context in
            context.message.kwargs.isEmpty
                ? .array(context.message.args)
                : .object(["args": .array(context.message.args), "kwargs": .object(context.message.kwargs)])
        }
        try registry.register("demo.when") { context in
            // When the handler started, with the eta its message carried: delay tests check it never runs early.
            .object([
                "value": context.message.args.first ?? .null, "started": .double(Date().timeIntervalSince1970), "eta": context.message.eta.map(JSONValue.string) ?? .null,
                "worker": .string(context.hostname),
            ])
        }
        try registry.register("demo.trace") { context in
            .object([
                "value": context.message.args.first ?? .null, "redelivered": .bool(context.redelivered),
                "worker": .string(context.hostname),
            ])
        }
        try registry.register("demo.trace_retry") { context in
            let value = context.message.args.first ?? context.message.kwargs["value"] ?? .null
            let retries = (context.message.args.dropFirst().first ?? context.message.kwargs["retries"])?.intValue ?? 1
            if context.retries < retries {
                throw TaskRetry(
                    countdown: .seconds(1),
                    reason: TaskFailure(
                        type: "KeyError",
                        message: "attempt \(context.retries + 1) of \(value.jsonString) asks for a retry (redelivered: \(context.redelivered))"))
            }
            return .object([
                "value": value, "redelivered": .bool(context.redelivered), "worker": .string(context.hostname),
                "retries": .int(context.retries),
            ])
        }
        try registry.register("demo.fail") { context in
            let message = context.message.args.first?.stringValue ?? context.message.kwargs["message"]?.stringValue
                ?? "demo.fail was asked to fail"
            throw TaskFailure(type: "ValueError", message: message)
        }
        try registry.register("demo.flaky") { context in
            let failTimes = context.message.args.first?.intValue ?? context.message.kwargs["fail_times"]?.intValue ?? 1
            if context.retries < failTimes {
                throw TaskRetry(
                    countdown: .seconds(1), reason: TaskFailure(type: "KeyError", message: "attempt \(context.retries + 1) fails"))
            }
            return .int(context.retries)
        }
    }
}

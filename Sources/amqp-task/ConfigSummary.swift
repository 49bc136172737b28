import AMQP
import AMQPTasks

/// The resolved configuration as `config check` prints it; the broker password is masked.
struct ConfigSummary {
    let text: String

    init(_ c: TasksConfiguration) {
        var lines: [String] = ["\(c.file.isEmpty ? "built-in defaults" : c.file): OK"]
        lines.append("broker: \(c.broker.maskedURL)" + (c.broker.heartbeat.map { ", heartbeat \(Self.seconds($0)) s" } ?? ""))
        for e in c.exchanges {
            lines.append("exchange \(e.name): \(e.type.rawValue)\(e.durable ? ", durable" : "")\(Self.arguments(e.arguments))")
        }
        for q in c.queues {
            lines.append("queue \(q.name): \(q.kind.rawValue)\(q.durable ? ", durable" : "")\(Self.arguments(q.declareArguments))")
            for b in q.bindings { lines.append("  bound to \(b.exchange) with \"\(b.routingKey)\"") }
        }
        for r in c.routes {
            switch r.target {
            case .queue(let queue): lines.append("route \(r.pattern) → queue \(queue)")
            case .exchange(let exchange, let key): lines.append("route \(r.pattern) → exchange \(exchange), key \"\(key)\"")
            }
        }
        lines.append("route (default) → queue celery")
        let w = c.worker
        lines.append(
            "worker: queues \(w.queues.isEmpty ? "celery" : w.queues.joined(separator: ", ")), concurrency \(w.concurrency), prefetch \(w.prefetch), grace \(Self.seconds(w.gracePeriod)) s")
        for name in c.tasks.keys.sorted() {
            let t = c.tasks[name]!
            var parts: [String] = []
            if let command = t.command { parts.append("command \(command.joined(separator: " "))") }
            if let queue = t.queue { parts.append("queue \(queue)") }
            if let m = t.maxRetries { parts.append("max_retries \(m)") }
            if let l = t.timeLimit { parts.append("time_limit \(Self.seconds(l)) s") }
            if let l = t.softTimeLimit { parts.append("soft_time_limit \(Self.seconds(l)) s") }
            if let i = t.ignoreResult { parts.append("ignore_result \(i)") }
            lines.append("task \(name): \(parts.joined(separator: ", "))")
        }
        for (name, schedule) in c.schedules.sorted(by: { $0.key < $1.key }) {
            var parts = ["task \(schedule.task)", "\(schedule.timing)"]
            if let queue = schedule.queue { parts.append("queue \(queue)") }
            if let expires = schedule.expires { parts.append("expires \(Self.seconds(expires)) s") }
            lines.append("schedule \(name): \(parts.joined(separator: ", "))")
        }
        text = lines.joined(separator: "\n")
    }

    /// A duration as a number of seconds, as the file writes it.
    private static func seconds(_ duration: Duration) -> String {
        let seconds = duration.secondsValue
        return seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int(seconds)) : "\(seconds)"
    }

    private static func arguments(_ table: FieldTable) -> String {
        table.isEmpty ? "" : ", " + table.map { "\($0.key)=\(Self.value($0.value))" }.joined(separator: ", ")
    }

    private static func value(_ v: FieldValue) -> String {
        if let s = v.stringValue { return "\"\(s)\"" }
        if let i = v.intValue { return "\(i)" }
        return "\(v)"
    }
}

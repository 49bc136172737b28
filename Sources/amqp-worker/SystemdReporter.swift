import AMQPTasks
import Logging

/// What amqp-worker tells systemd (`Type=notify`) through a `SystemdNotifier`: `READY=1` once the worker is
/// connected and consumes every configured queue (at once when only the scheduler runs), a `STATUS=` line each time
/// that changes (consuming, reconnecting), and `STOPPING=1` when a warm shutdown starts.
struct SystemdReporter: Sendable {
    let notifier: SystemdNotifier
    let logger: Logger

    /// Watches `worker.status` (every 200 ms; it has no change stream) until cancelled, sending `READY=1` with the
    /// first healthy status and a `STATUS=` line on each change.
    func reportUntilCancelled(_ worker: Worker?) async {
        guard let worker else {
            send(["READY=1", "STATUS=running the periodic scheduler only"])
            return
        }
        var ready = false
        var lastStatus: String?
        while !Task.isCancelled {
            let status = worker.status
            let text = Self.statusText(status)
            var fields: [String] = []
            if status.isHealthy && !ready {
                ready = true
                fields.append("READY=1")
            }
            if text != lastStatus { fields.append("STATUS=\(text)") }
            lastStatus = text
            if !fields.isEmpty { send(fields) }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Sends `STOPPING=1` with the reason as the status.
    func stopping(_ reason: String) {
        send(["STOPPING=1", "STATUS=\(reason)"])
    }

    /// The one-line status systemd shows (`systemctl status`) for a worker's status.
    static func statusText(_ status: WorkerStatus) -> String {
        if status.isHealthy { return "consuming \(status.queues.joined(separator: ", "))" }
        if !status.connected { return "not connected to the broker; connecting" }
        return "connected, not consuming \(status.idleQueues.joined(separator: ", ")) yet"
    }

    private func send(_ fields: [String]) {
        do {
            try notifier.send(fields)
        } catch {
            logger.warning("\(error)")
        }
    }
}

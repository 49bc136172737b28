import FoundationEssentials

/// Reads `[worker]` straight into a `WorkerConfiguration` (defaults for the keys it leaves out).
enum WorkerSection {
    static func read(_ r: TableReader) -> WorkerConfiguration {
        let context = r.context
        r.allowOnly([
            "queues", "concurrency", "prefetch", "grace_period", "hostname", "send_started", "max_retries",
            "result_persistent", "max_message_size", "max_result_size", "record_attempts", "remote_control",
            "max_abandoned_handlers",
            "consumer_timeout", "metrics_port", "metrics_host",
            "log_format", "max_concurrency", "autoscale", "autoscale_keepalive",
        ])
        var worker = WorkerConfiguration()
        if let queues = r.stringArray("queues") {
            for queue in queues {
                r.checkShortString(
                    "queues", queue, maxBytes: DeadLetters.longestQueueName,
                    because: " for each queue (AMQP names hold 255, and the worker also declares its .dead queue)")
            }
            context.workerQueuesInFile = queues
            if !queues.isEmpty { worker.queues = queues }
        }
        if let concurrency = r.int("concurrency") {
            if concurrency >= 1 {
                worker.concurrency = concurrency
            } else {
                context.error(r.key("concurrency"), "expected a whole number of consumers, at least 1, got \(concurrency)")
            }
        }
        if let most = r.int("max_concurrency") {
            if (1...1000).contains(most) {
                worker.maxConcurrency = most
            } else {
                context.error(r.key("max_concurrency"), "expected 1 to 1000 consumers per queue, got \(most)")
            }
        }
        if let autoscale = r.string("autoscale") {
            do {
                let range = try AutoscaleRange(parsing: autoscale)
                if range.max > worker.maxConcurrency {
                    context.error(
                        r.key("autoscale"),
                        "the autoscale maximum \(range.max) is above max_concurrency (\(worker.maxConcurrency)): raise max_concurrency or lower the maximum")
                } else {
                    worker.autoscale = range
                }
            } catch {
                context.error(r.key("autoscale"), "\(error)")
            }
        }
        if let keepalive = r.nonNegativeSeconds("autoscale_keepalive") { worker.autoscaleKeepalive = keepalive }
        if let prefetch = r.int("prefetch") {
            if let valid = UInt16(exactly: prefetch), valid >= 1 {
                worker.prefetch = valid
            } else {
                context.error(r.key("prefetch"), "expected 1 to 65535 unacknowledged tasks per consumer, got \(prefetch)")
            }
        }
        if let grace = r.nonNegativeSeconds("grace_period") { worker.gracePeriod = grace }
        if let hostname = r.string("hostname") { worker.hostname = hostname }
        if let sendStarted = r.bool("send_started") { worker.sendStarted = sendStarted }
        if let persistent = r.bool("result_persistent") { worker.persistentResults = persistent }
        if let maxRetries = r.nonNegativeInt("max_retries") { worker.retryPolicy.maxRetries = maxRetries }
        if let size = r.byteCount("max_message_size") { worker.maxMessageSize = size }
        if let size = r.byteCount("max_result_size") { worker.maxResultSize = size }
        if let attempts = r.int("record_attempts") {
            if (1...100).contains(attempts) {
                worker.recordAttempts = attempts
            } else {
                context.error(r.key("record_attempts"), "expected 1 to 100 attempts, got \(attempts)")
            }
        }
        if let abandoned = r.int("max_abandoned_handlers") {
            if (0...1000).contains(abandoned) {
                worker.maxAbandonedHandlers = abandoned
            } else {
                context.error(r.key("max_abandoned_handlers"), "expected 0 to 1000 handlers, got \(abandoned)")
            }
        }
        if let access = r.string("remote_control") {
            if let parsed = RemoteControlAccess(rawValue: access) {
                worker.remoteControl = parsed
            } else {
                context.error(r.key("remote_control"), "expected one of \(RemoteControlAccess.spellings), got \"\(access)\"")
            }
        }
        if let timeout = r.consumerTimeout("consumer_timeout") { worker.consumerTimeout = timeout.duration }
        worker.metricsEndpoint = metricsEndpoint(r)
        if let format = r.string("log_format") {
            if let parsed = LogFormat(rawValue: format) {
                worker.logFormat = parsed
            } else {
                context.error(r.key("log_format"), "expected one of \(LogFormat.spellings), got \"\(format)\"")
            }
        }
        return worker
    }
}

extension WorkerSection {
    /// `metrics_port` (1 to 65535) and `metrics_host` (default 127.0.0.1); a host without a port is an error.
    static func metricsEndpoint(_ r: TableReader) -> MetricsEndpoint? {
        let context = r.context
        let host = r.string("metrics_host")
        if let host, host.isEmpty {
            context.error(r.key("metrics_host"), "expected an address to listen on, such as \"127.0.0.1\" or \"0.0.0.0\", got an empty string")
        }
        guard let port = r.int("metrics_port") else {
            if host != nil {
                context.error(r.key("metrics_host"), "metrics_host needs metrics_port: add metrics_port = PORT to [worker], or remove metrics_host")
            }
            return nil
        }
        guard (1...65535).contains(port) else {
            context.error(r.key("metrics_port"), "expected a TCP port from 1 to 65535, got \(port)")
            return nil
        }
        return MetricsEndpoint(host: host.flatMap { $0.isEmpty ? nil : $0 } ?? MetricsEndpoint.defaultHost, port: port)
    }
}

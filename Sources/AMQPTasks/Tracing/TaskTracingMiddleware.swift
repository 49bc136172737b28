import FoundationEssentials
import Tracing

/// The worker's own middleware that traces every handler run: a consumer span `run/<task>` that continues the trace
/// context the task message carries (from a Swift `TaskClient` or an instrumented Celery client), or starts a new
/// trace when it carries none or a malformed one. The handler runs with the span's context as
/// `ServiceContext.current`, so the tasks it sends through a `TaskClient` are children of it; the tasks the worker
/// sends on its behalf (links, chain steps, errbacks, its retry) are too (`TaskTraceSlot`).
struct TaskTracingMiddleware: ImmediateHooks {
    let hooks: MiddlewareHooks = [.run]
    let tracing: TaskTracing

    /// No tracer bootstrapped (the default): a no-op span would record nothing and inject nothing, so the task
    /// runs without this middleware (no header parsing, span, task-local or async frame).
    func wrapsRun(_ task: TaskContext) -> Bool { !(tracing.tracer is NoOpTracer) }

    func run(_ task: TaskContext, next: @Sendable (TaskContext) async throws -> JSONValue) async throws -> JSONValue {
        let tracer = tracing.tracer
        // No tracer bootstrapped (the default): a no-op span would record nothing and inject nothing, so skip the
        // header parsing, span and task-local on every task.
        if tracer is NoOpTracer { return try await next(task) }
        let parent = tracing.context(of: task.message)
        let span = tracer.startSpan("\(SpanNames.run)/\(task.taskName)", context: parent, ofKind: .consumer)
        defer { span.end() }
        span.attributes[SpanNames.action] = SpanNames.run
        span.attributes[SpanNames.taskName] = task.taskName
        span.attributes[SpanNames.messageID] = task.taskId
        span.attributes[SpanNames.destination] = task.queue
        span.attributes[SpanNames.hostname] = task.hostname
        if task.retries > 0 { span.attributes[SpanNames.retries] = task.retries }
        task.traceSlot.set(span.context, tracing: tracing)
        do {
            let value = try await ServiceContext.withValue(span.context) { try await next(task) }
            span.attributes[SpanNames.state] = "SUCCESS"
            return value
        } catch let retry as TaskRetry {
            span.attributes[SpanNames.state] = "RETRY"
            span.attributes[SpanNames.retryReason] = "\(retry.reason)"
            throw retry
        } catch let revoked as TaskRevoked {
            span.attributes[SpanNames.state] = "REVOKED"
            throw revoked
        } catch {
            span.attributes[SpanNames.state] = "FAILURE"
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error, message: "\(error)"))
            throw error
        }
    }
}

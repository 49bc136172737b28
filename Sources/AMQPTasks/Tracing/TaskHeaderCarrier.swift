import AMQP
import Instrumentation

/// Reads trace context (W3C `traceparent`, `tracestate`, or whatever keys the bootstrapped tracer uses) from a task
/// message's AMQP headers, where Celery's OpenTelemetry instrumentation puts it.
struct TaskHeaderExtractor: Extractor {
    func extract(key: String, from carrier: FieldTable) -> String? {
        carrier[key]?.stringValue
    }
}

/// Writes trace context into a task message's AMQP headers, as Celery's OpenTelemetry instrumentation does, so an
/// instrumented Celery worker continues the trace.
struct TaskHeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout FieldTable) {
        carrier[key] = .string(value)
    }
}

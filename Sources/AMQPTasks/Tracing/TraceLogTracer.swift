import FoundationEssentials
import Synchronization
import Tracing

/// A tiny tracer that propagates W3C trace context (`traceparent`, `tracestate`) and hands every finished span to a
/// closure: enough to see a trace across a Celery client, Swift workers and Celery workers without a collector.
/// `amqp-worker --trace-log PATH` bootstraps it with `jsonLines(to:)`, one JSON object per finished span.
///
/// It is no exporter: for production, bootstrap a real tracer (swift-otel's, for one) with
/// `InstrumentationSystem.bootstrap`; `Worker` and `TaskClient` work with any.
///
/// ```swift
/// InstrumentationSystem.bootstrap(TraceLogTracer { span in print(span.json.jsonString) })
/// ```
public struct TraceLogTracer: Tracer {
    public typealias Span = TraceLogSpan
    private let onFinish: @Sendable (TraceLogRecord) -> Void

    /// A tracer that calls `onFinish` with each span when it ends (on the thread that ends it).
    public init(onFinish: @escaping @Sendable (TraceLogRecord) -> Void) {
        self.onFinish = onFinish
    }

    /// A tracer that appends each finished span to `file` as one line of JSON (`TraceLogRecord.json`).
    public static func jsonLines(to file: OutputFile) -> TraceLogTracer {
        let writer = LineWriter(file)
        return TraceLogTracer { record in writer.write(record.json.jsonString + "\n") }
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> TraceLogSpan {
        var context = context()
        let parent = context[TraceParentKey.self]
        let own = TraceParent(
            traceID: parent?.traceID ?? TraceParent.randomTraceID(), spanID: TraceParent.randomSpanID(),
            flags: parent?.flags ?? 1)!
        context[TraceParentKey.self] = own
        return TraceLogSpan(
            operationName: operationName, kind: kind, context: context, own: own, parentSpanID: parent?.spanID,
            start: instant().nanosecondsSinceEpoch, onFinish: onFinish)
    }

    public func forceFlush() {}

    /// Writes `traceparent` (and `tracestate`, if the trace has one) of the context's span.
    public func inject<Carrier, Inject: Injector>(
        _ context: ServiceContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let parent = context[TraceParentKey.self] else { return }
        injector.inject(parent.description, forKey: "traceparent", into: &carrier)
        if let state = context[TraceStateKey.self] { injector.inject(state, forKey: "tracestate", into: &carrier) }
    }

    /// Reads `traceparent` and `tracestate`; a missing or malformed `traceparent` leaves the context as it was (the
    /// next span starts a new trace), as the W3C specification asks.
    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: "traceparent", from: carrier), let parent = TraceParent(header: header)
        else { return }
        context[TraceParentKey.self] = parent
        if let state = extractor.extract(key: "tracestate", from: carrier), !state.isEmpty {
            context[TraceStateKey.self] = state
        }
    }
}

/// A span of `TraceLogTracer`.
public final class TraceLogSpan: Tracing.Span, Sendable {
    public let context: ServiceContext
    private let own: TraceParent
    private let parentSpanID: String?
    private let kind: SpanKind
    private let start: UInt64
    private let onFinish: @Sendable (TraceLogRecord) -> Void
    private struct State {
        var name: String
        var attributes = SpanAttributes()
        var status: SpanStatus?
        var errors: [String] = []
        var events: [String] = []
        var ended = false
    }
    private let state: Mutex<State>

    init(
        operationName: String, kind: SpanKind, context: ServiceContext, own: TraceParent, parentSpanID: String?,
        start: UInt64, onFinish: @escaping @Sendable (TraceLogRecord) -> Void
    ) {
        state = Mutex(State(name: operationName))
        self.kind = kind
        self.context = context
        self.own = own
        self.parentSpanID = parentSpanID
        self.start = start
        self.onFinish = onFinish
    }

    public var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { if !$0.ended { $0.name = newValue } } }
    }
    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { if !$0.ended { $0.attributes = newValue } } }
    }
    public var isRecording: Bool { state.withLock { !$0.ended } }

    public func setStatus(_ status: SpanStatus) { state.withLock { if !$0.ended { $0.status = status } } }
    public func addEvent(_ event: SpanEvent) { state.withLock { if !$0.ended { $0.events.append(event.name) } } }
    public func addLink(_ link: SpanLink) {}
    public func recordError<Instant: TracerInstant>(
        _ error: Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant
    ) {
        state.withLock { if !$0.ended { $0.errors.append("\(error)") } }
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        guard let ended = state.withLock({ state -> State? in
            guard !state.ended else { return nil }
            state.ended = true
            return state
        }) else { return }
        var attributes: [String: JSONValue] = [:]
        ended.attributes.forEach { name, value in attributes[name] = Self.json(value) }
        onFinish(
            TraceLogRecord(
                name: ended.name, kind: "\(kind)", traceID: own.traceID, spanID: own.spanID, parentSpanID: parentSpanID,
                startNanoseconds: start, endNanoseconds: instant().nanosecondsSinceEpoch, attributes: attributes,
                error: ended.status?.code == .error ? (ended.status?.message ?? ended.errors.first ?? "error") : nil))
    }

    private static func json(_ value: SpanAttribute) -> JSONValue {
        switch value {
        case .int32(let v): .int(Int(v))
        case .int64(let v): .int(Int(v))
        case .double(let v): .double(v)
        case .bool(let v): .bool(v)
        case .string(let v): .string(v)
        default: .string("\(value)")
        }
    }
}

/// A finished span of `TraceLogTracer`.
public struct TraceLogRecord: Sendable, Hashable {
    public var name: String
    /// `producer`, `consumer`, `internal`, `client` or `server`.
    public var kind: String
    public var traceID: String
    public var spanID: String
    /// Nil for a span that started a trace.
    public var parentSpanID: String?
    public var startNanoseconds: UInt64
    public var endNanoseconds: UInt64
    public var attributes: [String: JSONValue]
    /// Why the span failed; nil unless its status is error.
    public var error: String?

    /// `{"name", "kind", "trace_id", "span_id", "parent_span_id", "start_unix_nano", "end_unix_nano",
    /// "attributes", "error"}`, ids as lowercase hex as in `traceparent`.
    public var json: JSONValue {
        .object([
            "name": .string(name), "kind": .string(kind), "trace_id": .string(traceID), "span_id": .string(spanID),
            "parent_span_id": parentSpanID.map(JSONValue.string) ?? .null,
            "start_unix_nano": .int(Int(clamping: startNanoseconds)), "end_unix_nano": .int(Int(clamping: endNanoseconds)),
            "attributes": .object(attributes), "error": error.map(JSONValue.string) ?? .null,
        ])
    }
}

/// The span context `TraceLogTracer` keeps in a `ServiceContext`: the current span's, or the remote parent's.
private enum TraceParentKey: ServiceContextKey {
    typealias Value = TraceParent
}

private enum TraceStateKey: ServiceContextKey {
    typealias Value = String
}

/// Writes whole lines to a file from any thread, one at a time. A line that cannot be written is dropped: tracing
/// never stops a worker.
private final class LineWriter: Sendable {
    private let file: Mutex<OutputFile>
    init(_ file: OutputFile) { self.file = Mutex(file) }
    func write(_ line: String) { file.withLock { try? $0.write(line.utf8) } }
}

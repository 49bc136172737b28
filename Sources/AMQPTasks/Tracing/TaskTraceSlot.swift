import FoundationEssentials
import Synchronization
import Tracing

/// The span context of a task's handler run, for the tasks the worker publishes on its behalf afterwards (links,
/// the next step of a chain, errbacks, its retry): `TaskTracingMiddleware` fills it in when the handler starts,
/// `RecordStage` reads it. Empty when the handler never ran (a rejection or retry asked for before it).
final class TaskTraceSlot: Sendable {
    private let state = Mutex<(context: ServiceContext, tracing: TaskTracing)?>(nil)

    func set(_ context: ServiceContext, tracing: TaskTracing) {
        state.withLock { $0 = (context, tracing) }
    }

    /// Starts the producer span of a follow-up task, a child of the handler's span, and writes its context into
    /// `message`; nil (and `message` unchanged: it keeps the context it was given) when the handler never ran.
    func startPublish(of message: inout TaskMessage, to destination: String) -> (any Span)? {
        guard let (context, tracing) = state.withLock({ $0 }) else { return nil }
        return tracing.startPublish(of: &message, to: destination, parent: context)
    }
}

@testable import AMQPTasks
import InMemoryTracing
import Testing
import Tracing

/// The synchronous forms of the worker's own middleware hooks (`ImmediateHooks`) decide as the async hooks would,
/// and hand a task back to the async hook whenever that must wait: the pipeline awaits only then (issue 17).
@Suite struct ImmediateHooksTests {
    static func task(_ id: String = "t1", name: String = "t") -> TaskContext {
        TaskContext(message: TaskMessage(id: id, name: name))
    }

    @Test func revocationRefusesARevokedTaskAtOnce() throws {
        let state = WorkerState()
        _ = state.revoke(["gone"], terminate: false)
        let middleware = RevocationMiddleware(state: state)
        #expect(throws: TaskRevoked.self) { try middleware.receivedAtOnce(Self.task("gone")) }
        #expect(throws: TaskRevoked.self) { try middleware.willRunAtOnce(Self.task("gone")) }
        #expect(try middleware.receivedAtOnce(Self.task("kept")))
        #expect(try middleware.willRunAtOnce(Self.task("kept")))
    }

    /// A task under a rate limit is handed to the async `willRun`, which waits for its turn; one under none is not.
    @Test func rateLimitWaitsOnlyForALimitedTask() throws {
        let state = WorkerState()
        let middleware = RateLimitMiddleware(state: state)
        #expect(try middleware.willRunAtOnce(Self.task(name: "free")))
        state.rateLimits.set(RateLimit(perSecond: 1)!, for: "limited")
        #expect(try middleware.willRunAtOnce(Self.task(name: "limited")) == false, "the async willRun must wait")
        #expect(middleware.wrapsRun(Self.task(name: "limited")) == false, "no token held: run only calls next")
    }

    /// Without a tracer the tracing middleware stays out of the run chain; with one it wraps the handler.
    @Test func tracingWrapsARunOnlyWithATracer() {
        #expect(TaskTracingMiddleware(tracing: TaskTracing(NoOpTracer())).wrapsRun(Self.task()) == false)
        #expect(TaskTracingMiddleware(tracing: TaskTracing(InMemoryTracer())).wrapsRun(Self.task()))
    }

    /// The no-op shortcut of `TaskTracing.tracer` sees a tracer bound to the task (`withTracer`) as the library does.
    @Test func aTracerBoundToTheTaskIsStillFound() {
        #expect(TaskTracing(nil).tracer is NoOpTracer)
        let found = withTracer(InMemoryTracer()) { TaskTracing(nil).tracer }
        #expect(found is InMemoryTracer)
        #expect(TaskTracingMiddleware(tracing: TaskTracing(nil)).wrapsRun(Self.task()) == false)
    }

    @Test func theWorkersOwnMiddlewareIsCalledAtOnceWhereItCanBe() {
        let all = TaskPipeline.middleware(state: WorkerState(), events: nil, hostname: "h", user: [])
        for hook in [MiddlewareHooks.received, .willRun, .recorded, .run] {
            for pipelineHook in all.hooks(hook) {
                #expect(pipelineHook.immediate != nil, "\(type(of: pipelineHook.middleware)) has no synchronous form")
            }
        }
    }
}

/// A worker's own middleware that can usually do its hooks without awaiting: the pipeline calls these synchronous
/// forms first, and awaits the hook itself only when one answers false. An async call through `any TaskMiddleware`
/// allocates a frame and may switch tasks even when the hook never awaits (logging, a revocation check); with the
/// default middleware that was six such calls, and two `run` wrappers, a task (issue 17).
///
/// Each `…AtOnce` must do exactly what its async hook would (or nothing, answering false), so that middleware order
/// and semantics do not depend on which form ran. The defaults answer false: the async hook runs.
protocol ImmediateHooks: HookDeclaringMiddleware {
    /// Does `received` without awaiting; false when `received` must be awaited instead.
    func receivedAtOnce(_ task: TaskContext) throws -> Bool
    /// Does `willRun` without awaiting; false when `willRun` must be awaited instead.
    func willRunAtOnce(_ task: TaskContext) throws -> Bool
    /// Does `recorded` without awaiting; false when `recorded` must be awaited instead.
    func recordedAtOnce(_ outcome: TaskOutcome, of task: TaskContext) -> Bool
    /// False when `run` would only call `next` for this task: the pipeline then leaves this middleware out of the
    /// task's `run` chain.
    func wrapsRun(_ task: TaskContext) -> Bool
}

extension ImmediateHooks {
    func receivedAtOnce(_ task: TaskContext) throws -> Bool { false }
    func willRunAtOnce(_ task: TaskContext) throws -> Bool { false }
    func recordedAtOnce(_ outcome: TaskOutcome, of task: TaskContext) -> Bool { false }
    func wrapsRun(_ task: TaskContext) -> Bool { true }
}

/// One middleware as the pipeline calls it for one hook: its synchronous form too, when it has one.
struct PipelineHook: Sendable {
    let middleware: any TaskMiddleware
    let immediate: (any ImmediateHooks)?

    init(_ middleware: any TaskMiddleware) {
        self.middleware = middleware
        immediate = middleware as? any ImmediateHooks
    }
}

extension Array where Element == any TaskMiddleware {
    /// `implementing(hook)`, each with its synchronous form.
    func hooks(_ hook: MiddlewareHooks) -> [PipelineHook] { implementing(hook).map(PipelineHook.init) }
}

/// The hooks of `TaskMiddleware` a worker's own middleware implements, so the pipeline calls only those: each call
/// of an async hook through `any TaskMiddleware` allocates a frame and switches tasks even when the hook is the
/// protocol's empty default (callgrind: eight such calls a task with the default middleware).
struct MiddlewareHooks: OptionSet, Sendable {
    let rawValue: Int

    static let received = MiddlewareHooks(rawValue: 1 << 0)
    static let willRun = MiddlewareHooks(rawValue: 1 << 1)
    static let run = MiddlewareHooks(rawValue: 1 << 2)
    static let recorded = MiddlewareHooks(rawValue: 1 << 3)
    static let rejected = MiddlewareHooks(rawValue: 1 << 4)
    static let all: MiddlewareHooks = [.received, .willRun, .run, .recorded, .rejected]
}

/// A worker's own middleware that says which hooks it implements; a user's middleware is called for every hook.
protocol HookDeclaringMiddleware: TaskMiddleware {
    /// The hooks this middleware implements (the others are the protocol's defaults, which do nothing).
    var hooks: MiddlewareHooks { get }
}

extension Array where Element == any TaskMiddleware {
    /// The middleware, in order, that implement `hook` (every one that does not declare its hooks).
    func implementing(_ hook: MiddlewareHooks) -> [any TaskMiddleware] {
        filter { ($0 as? any HookDeclaringMiddleware)?.hooks.contains(hook) ?? true }
    }
}

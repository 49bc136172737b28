import FoundationEssentials

/// The worker stopped waiting for a handler (shutdown past its grace period, or `revoke --terminate`), as opposed
/// to a `CancellationError` the handler threw by itself, which is a failure like any other.
struct HandlerAbandoned: Error, CustomStringConvertible {
    var description: String { "the worker stopped waiting for the handler (shutdown or revoke --terminate)" }
}

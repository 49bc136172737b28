/// Collects the confirms of one batch (`Channel.publish(batch:)`) and reports them together. I/O thread only: it
/// lives in the publish completions, which run there, and is not `Sendable`.
final class BatchCollector {
    private var results: [Result<Void, AMQPError>]
    private var remaining: Int
    private let done: @Sendable (Result<[Result<Void, AMQPError>], AMQPError>) -> Void

    init(count: Int, done: @escaping @Sendable (Result<[Result<Void, AMQPError>], AMQPError>) -> Void) {
        results = Array(repeating: .success(()), count: count)
        remaining = count
        self.done = done
    }

    func record(_ result: Result<Void, AMQPError>, at index: Int) {
        results[index] = result
        remaining -= 1
        if remaining == 0 { done(.success(results)) }
    }
}

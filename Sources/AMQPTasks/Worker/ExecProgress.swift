import FoundationEssentials
import Synchronization
import Logging

/// How an exec command reports progress: it writes JSON lines to descriptor 3, whose number the worker also puts in
/// `AMQP_TASKS_PROGRESS_FD`. A line `{"current": 3, "total": 10}` (any JSON object) reports `PROGRESS` with that
/// meta; `{"state": "NAME", "meta": {...}}` reports custom state NAME. Each becomes a state message to the caller,
/// as `TaskContext.updateState` sends (best effort, coalesced: the latest line wins while one is being sent).
/// A malformed line is logged and ignored, and never fails or stalls the task; a line over 64 KiB is dropped.
enum ExecProgress {
    /// The descriptor the command writes its progress lines to.
    static let descriptor: Int32 = 3
    /// The environment variable that names it.
    static let environmentVariable = "AMQP_TASKS_PROGRESS_FD"

    /// What to do with each line the command writes: report it, or log why not. Malformed lines are logged
    /// the first ten times and then every hundredth, so a command that writes garbage cannot flood the log.
    static func reporter(for context: TaskContext) -> @Sendable (ProgressLines.Line) -> Void {
        let refused = RefusedLines()
        return { line in
            let problem: String
            switch line {
            case .tooLong(let bytes):
                problem = "a line of \(bytes) bytes, over the 64 KiB a progress line may have"
            case .line(let data):
                switch ProgressLine.parse(data) {
                case .success(let (state, meta)):
                    try? context.updateState(state, meta: meta)
                    return
                case .failure(let error):
                    problem = "\"\(String(decoding: data.prefix(200), as: UTF8.self))\" \(error)"
                }
            }
            let count = refused.add()
            guard count <= 10 || count % 100 == 0 else { return }
            context.logger.warning(
                "ignored progress line \(count) of \(context.taskName) on descriptor \(descriptor) (\(environmentVariable)): \(problem); write one JSON object per line")
        }
    }
}

/// Counts malformed progress lines of one run.
private final class RefusedLines: Sendable {
    private let count = Mutex(0)
    func add() -> Int { count.withLock { $0 += 1; return $0 } }
}

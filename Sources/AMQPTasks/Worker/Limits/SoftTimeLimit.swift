import FoundationEssentials

extension TaskMessage {
    /// The soft time limit this task runs with: the one it asked for (the soft value of `timelimit`), else
    /// `configured` (`[tasks."NAME"] soft_time_limit`); nil for none (zero means none too, as in Celery).
    func softTimeLimit(configured: Duration?) -> Duration? {
        (timeLimit.soft ?? configured).flatMap { $0 > .zero ? $0 : nil }
    }
}

/// Following a sent task's states as they come: STARTED, custom states such as PROGRESS, RETRY, then the final one.
extension TaskClient {
    /// The states of a task this client sent, in the order they arrived: first those received so far, then each
    /// one as it comes; the stream ends after the final state (SUCCESS, FAILURE or REVOKED), which it delivers.
    /// Custom states (`PROGRESS` from `TaskContext.reportProgress`, or a Celery task's `update_state`) are
    /// delivered with their meta in `result`.
    ///
    /// It throws `TaskClientError.noResult` when no final state came within `timeout`, and `.clientClosed` when the
    /// client closes meanwhile. The final result stays with the client: `result(for:)` or `value(for:)` afterwards
    /// returns it at once (and takes it). A task that reports progress faster than its caller reads has the latest
    /// 100 states (and the final one) waiting in the stream, older ones dropped, as the client's own store keeps the
    /// latest 100 per task: a slow reader of a long task never grows memory without end.
    public func stateUpdates(for taskId: String, timeout: Duration = .seconds(60))
        -> AsyncThrowingStream<ResultMessage, Error>
    {
        let (stream, continuation) = AsyncThrowingStream<ResultMessage, Error>.makeStream(
            bufferingPolicy: .bufferingNewest(ResultCache.maxHistory + 1))
        let router = router
        Task { await router.watch(taskId, timeout: timeout, stream: continuation) }
        return stream
    }
}

import AMQP
@testable import AMQPTasks
import Testing

/// The client's one error type, without a broker: codes matched in `catch`, refusals sorted by their cause.
@Suite struct TaskClientErrorTests {
    func throwing(_ error: any Error) throws { throw error }

    @Test func aCatchMatchesTheCodeAndNothingElse() {
        var caught: [String] = []
        for error: any Error in [
            TaskClientError.clientClosed("send"), TaskClientError.noResult("t", within: .seconds(1)),
            TaskFailure(type: "ValueError", message: "not a client error"),
        ] {
            do {
                try throwing(error)
            } catch TaskClientError.timedOut {
                caught.append("timedOut")
            } catch TaskClientError.closed {
                caught.append("closed")
            } catch {
                caught.append("other")
            }
        }
        #expect(caught == ["closed", "timedOut", "other"])
    }

    @Test func refusalsAreSortedByTheBrokersWord() {
        let unroutable = TaskClientError.refused(
            "t1", attempts: 1, cause: AMQPError(.unroutable, operation: "basic.publish", message: "NO_ROUTE"))
        #expect(unroutable.code == .notConfirmed)
        #expect(unroutable.description.contains("no queue is bound"))
        let overlong = TaskClientError.refused(
            "t2", attempts: 1, cause: AMQPError(.invalidArgument, operation: "basic.publish", message: "too long"))
        #expect(overlong.code == .badArguments)
        #expect(overlong.description.contains("nothing was published"))
        let nacked = TaskClientError.refused(
            "t3", attempts: 2, cause: AMQPError(.nacked, operation: "basic.publish", message: "nack"))
        #expect(nacked.code == .notConfirmed)
        #expect(nacked.attempts == 2)
        #expect(nacked.cause?.kind == .nacked, "the broker's error stays reachable")
    }

    @Test func aSendWindowRunOutSaysWhatToDo() {
        let error = TaskClientError.sendWindowExhausted(
            "t4", attempts: 7, window: .seconds(1),
            lastError: AMQPError(.library, operation: "connect", message: "connection refused"))
        #expect(error.code == .timedOut)
        #expect(error.taskId == "t4")
        #expect(error.description.contains("was not confirmed by the broker after 7 attempt(s)"))
        #expect(error.description.contains("sendRetryWindow"))
        #expect(error.cause?.kind == .library)
    }
}

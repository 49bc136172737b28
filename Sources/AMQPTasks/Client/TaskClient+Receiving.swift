import AMQP
import FoundationEssentials
import Logging

/// How results reach the client: one receiver per connection consumes the reply queue and hands each result to
/// `ResultRouter`; when the connection is lost, the receiver reconnects and the new session starts the next one.
extension TaskClient {
    /// Routes results to their waiters until the session's connection is lost, then makes a new session (which
    /// starts its own receiver); ends when the client is closed.
    func receiveResults(_ consumer: Consumer, session: ClientSession) async {
        do {
            for try await delivery in consumer {
                do {
                    let result = try ResultMessage.decode(body: delivery.body)
                    await router.deliver(result, redelivered: delivery.redelivered)
                } catch {
                    logger.warning("ignored a message on the reply queue that is not a result: \(error)")
                }
                // Without waiting for the write: the broker confirms a persistent result to its worker as soon as
                // it is acked, instead of after its disk write, so the sooner the ack leaves, the sooner the worker
                // takes its next task. A lost ack only means the result comes again (and is dropped as a copy).
                delivery.sendAck()
            }
            if await link.isClosed {
                await router.failAll(TaskClientError.clientClosed("result"))
                return
            }
            await link.lost(session, because: AMQPError(.closed, operation: "basic.consume", message: "the connection closed"))
        } catch {
            if await link.isClosed {
                await router.failAll(TaskClientError.clientClosed("result"))
                return
            }
            if (error as? AMQPError)?.kind == .consumerCancelledByServer {
                logger.error("the broker cancelled the result consumer on \(replyQueue): \(error); consuming again")
            }
            await link.lost(session, because: error)
        }
        await reconnectForResults()
    }

    /// Keeps trying to connect until a session (whose handler starts a new receiver) exists or the client closes.
    private func reconnectForResults() async {
        while await !link.isClosed, !Task.isCancelled {
            do {
                _ = try await link.session()
                return
            } catch {
                let pause = await link.backoff(reconnect)
                logger.warning("cannot reach the broker to receive results: \(error); retrying in \(String(cFormat: "%.1f", pause.secondsValue)) s")
                try? await Task.sleep(for: pause)
            }
        }
    }
}

import CRabbitMQ

#if canImport(Glibc)
    import Glibc
#endif

/// The I/O thread's loop: run what was submitted, read what the broker sent, sleep in `poll` until either has
/// more, and keep heartbeats going in between.
extension ConnectionCore {
    /// Serves the connection until it closes, then tears it down. I/O thread only (checked).
    func runLoop() {
        thread.assertCurrent("runLoop")
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        var frame = amqp_frame_t()
        let heartbeatSeconds = configuration.heartbeatOnTheWire ?? 0
        let pollMilliseconds = heartbeatSeconds > 0 ? heartbeatSeconds * 500 : 1000
        let io = io
        while !io.isDead {
            runSubmittedOperations()
            if io.isDead { break }

            var handled = 0
            while handled < 4096, !io.isDead {
                let status = amqp_simple_wait_frame_noblock(io.connection, &frame, &zero)
                if status == AMQP_STATUS_TIMEOUT.rawValue { break }
                guard status == AMQP_STATUS_OK.rawValue else {
                    connectionFailed(.libraryFailure(status, operation: "read from the broker"))
                    break
                }
                handle(frame)
                handled += 1
            }
            if io.isDead { break }
            amqp_maybe_release_buffers(io.connection)
            if handled > 0 { continue }

            guard operations.prepareToSleep() else { continue }
            var fds = [
                pollfd(fd: amqp_get_sockfd(io.connection), events: Int16(POLLIN), revents: 0),
                pollfd(fd: operations.wakeFD, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, 2, pollMilliseconds)
            operations.wokeUp(wakeFDReadable: fds[1].revents != 0)
            if ready == 0 { serviceHeartbeats(&frame) }
        }
        teardown()
    }

    /// Handles the frames a synchronous RPC set aside while it waited for its reply (rabbitmq-c queues every other
    /// frame that arrives first), so that what came before the reply is known when the RPC returns. I/O thread only.
    func handleQueuedFrames() {
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        var frame = amqp_frame_t()
        while amqp_frames_enqueued(state) != 0, !io.isDead {
            guard amqp_simple_wait_frame_noblock(state, &frame, &zero) == AMQP_STATUS_OK.rawValue else { return }
            handle(frame)
        }
    }

    /// After a quiet poll interval: lets rabbitmq-c send a heartbeat if one is due, and notice a broker that
    /// has been silent for two intervals (it reports `AMQP_STATUS_HEARTBEAT_TIMEOUT` only when the wait's
    /// deadline is not "immediate", hence the millisecond).
    private func serviceHeartbeats(_ frame: inout amqp_frame_t) {
        var oneMillisecond = timeval(tv_sec: 0, tv_usec: 1000)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &oneMillisecond)
        if status == AMQP_STATUS_OK.rawValue {
            handle(frame)
        } else if status != AMQP_STATUS_TIMEOUT.rawValue {
            connectionFailed(
                .libraryFailure(
                    status, operation: "heartbeat",
                    hint: status == AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue
                        ? "the broker sent nothing for two heartbeat intervals" : nil))
        }
    }

    private func runSubmittedOperations() {
        let submitted = operations.takeAll()
        for (index, operation) in submitted.enumerated() {
            if io.isDead {
                let error = closedError ?? AMQPError(.closed, operation: "connection", message: "closed")
                for rest in submitted[index...] { rest.fail(error) }
                return
            }
            operation.run(self)
            arena.reset()
        }
    }
}

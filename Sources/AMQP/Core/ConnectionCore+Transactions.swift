import CRabbitMQ

/// AMQP transactions (`tx.select`, `tx.commit`, `tx.rollback`) as calls into rabbitmq-c. I/O thread only.
extension ConnectionCore {
    func txSelect(channel: UInt16) throws {
        try select(.transactions, channel: channel) { amqp_tx_select($0, $1) }
    }

    /// Commits; returns the transaction's mandatory publishes that the broker returned as unroutable.
    func txCommit(channel: UInt16) throws -> [AMQPError] {
        let channelState = try requireTransactional(channel, operation: "tx.commit")
        channelState.returnedInTransaction = []
        amqp_tx_commit(state, channel)
        try check(amqp_get_rpc_reply(state), operation: "tx.commit", channel: channel)
        handleQueuedFrames()  // the broker returns a transaction's unroutable publishes before commit-ok
        defer { channelState.returnedInTransaction = [] }
        return channelState.returnedInTransaction
    }

    func txRollback(channel: UInt16) throws {
        let channelState = try requireTransactional(channel, operation: "tx.rollback")
        amqp_tx_rollback(state, channel)
        try check(amqp_get_rpc_reply(state), operation: "tx.rollback", channel: channel)
        channelState.returnedInTransaction = []
    }

    private func requireTransactional(_ channel: UInt16, operation: String) throws -> ChannelState {
        let channelState = try openChannelState(channel, operation: operation)
        guard channelState.transactional else {
            throw AMQPError(
                .invalidArgument, operation: operation,
                message: "channel \(channel) is not transactional; nothing was sent",
                hint: "call selectTransactions() on the channel first")
        }
        return channelState
    }
}

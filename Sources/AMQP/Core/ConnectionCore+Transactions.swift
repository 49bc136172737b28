import CRabbitMQ

/// AMQP transactions (`tx.select`, `tx.commit`, `tx.rollback`) as calls into rabbitmq-c. I/O thread only.
extension ConnectionCore {
    func txSelect(channel: UInt16) throws {
        try select(.transactions, channel: channel) { amqp_tx_select($0, $1) }
    }

    func txCommit(channel: UInt16) throws {
        try requireTransactional(channel, operation: "tx.commit")
        amqp_tx_commit(state, channel)
        try check(amqp_get_rpc_reply(state), operation: "tx.commit", channel: channel)
    }

    func txRollback(channel: UInt16) throws {
        try requireTransactional(channel, operation: "tx.rollback")
        amqp_tx_rollback(state, channel)
        try check(amqp_get_rpc_reply(state), operation: "tx.rollback", channel: channel)
    }

    private func requireTransactional(_ channel: UInt16, operation: String) throws {
        guard try openChannelState(channel, operation: operation).transactional else {
            throw AMQPError(
                .invalidArgument, operation: operation,
                message: "channel \(channel) is not transactional; nothing was sent",
                hint: "call selectTransactions() on the channel first")
        }
    }
}

extension Duration {
    /// The duration as a number of seconds, fractions included, for rabbitmq-c's numbers and for messages.
    /// (AMQPTasks has its own public `secondsValue`; this one stays inside AMQP.)
    var secondsAsDouble: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

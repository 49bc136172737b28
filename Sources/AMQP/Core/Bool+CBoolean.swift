import CRabbitMQ

extension Bool {
    /// As rabbitmq-c's `amqp_boolean_t`.
    var c: amqp_boolean_t { self ? 1 : 0 }
}

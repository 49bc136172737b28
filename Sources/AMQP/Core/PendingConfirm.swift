/// One publish that waits for its confirm.
struct PendingConfirm {
    let exchange: String
    let routingKey: String
    let mandatory: Bool
    /// Set when a `basic.return` was matched to this publish; reported when its confirm arrives.
    var returned: AMQPError?
    let completion: (Result<Void, AMQPError>) -> Void
}

/// How a delivery is settled.
enum Settlement: Sendable {
    case ack(multiple: Bool)
    case nack(multiple: Bool, requeue: Bool)
    case reject(requeue: Bool)

    var methodName: String {
        switch self {
        case .ack: "basic.ack"
        case .nack: "basic.nack"
        case .reject: "basic.reject"
        }
    }
}

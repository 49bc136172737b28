/// How many deliveries one consumer slot processed on its current channel (one task reads and writes it).
final class ConsumerProgress: @unchecked Sendable {
    var processed = 0
}

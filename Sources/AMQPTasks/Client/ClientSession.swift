import AMQP

/// One connection of a `TaskClient`, with the channel it publishes on. Replaced as a whole when it is lost.
struct ClientSession: Sendable {
    let connection: Connection
    let publisher: Channel
    /// Counts the sessions of one client: a failure reported against an older session is ignored.
    let generation: Int
}

import AMQP

/// One connection of a `TaskClient`, with the channel it publishes on. Replaced as a whole when it is lost.
struct ClientSession: Sendable {
    let connection: Connection
    let publisher: Channel
    /// Counts the sessions of one client: a failure reported against an older session is ignored.
    let generation: Int
    /// What this connection declared for delayed tasks (kept when only the publishing channel is replaced).
    let delayed: DelayedDeliveryPreparation

    init(
        connection: Connection, publisher: Channel, generation: Int,
        delayed: DelayedDeliveryPreparation = DelayedDeliveryPreparation()
    ) {
        self.connection = connection
        self.publisher = publisher
        self.generation = generation
        self.delayed = delayed
    }
}

/// The channel numbers of one connection: 1 up to the negotiated `channel_max`, never 0 (the connection's own
/// channel), the number of a closed channel handed out again.
///
/// A plain value with no I/O, so its rules are tested without a broker.
struct ChannelIDs {
    /// The highest number the broker accepts (`channel_max` from `connection.tune`).
    private(set) var max: UInt16
    /// The lowest number never handed out yet (UInt32: it passes 65535 when every number is in use).
    private var next: UInt32 = 1
    /// Numbers handed out before and released since, reused before new ones.
    private var free: [UInt16] = []
    private var inUse: Set<UInt16> = []

    init(max: UInt16 = 2047) {
        self.max = Swift.max(max, 1)
    }

    /// Sets the limit the broker negotiated; 0 means "no limit", which AMQP caps at 65535.
    mutating func negotiated(_ channelMax: Int32) {
        max = channelMax <= 0 ? UInt16.max : UInt16(clamping: channelMax)
    }

    /// How many numbers are handed out and not released.
    var count: Int { inUse.count }

    /// A number no open channel has, or an error when all `max` of them are in use.
    mutating func allocate() throws(AMQPError) -> UInt16 {
        if let id = free.popLast() {
            inUse.insert(id)
            return id
        }
        guard next <= UInt32(max) else {
            throw AMQPError(
                .invalidArgument, operation: "channel.open", message: "all \(max) channels of this connection are open",
                hint: "close channels you no longer use")
        }
        let id = UInt16(next)
        next += 1
        inUse.insert(id)
        return id
    }

    /// Makes `id` available again. Releasing a number that is not in use (twice, or never handed out) does
    /// nothing, so two channels can never get the same number.
    mutating func release(_ id: UInt16) {
        guard inUse.remove(id) != nil else { return }
        free.append(id)
    }
}

/// How many channels a connection has open, and how many it may have: the `channel_max` the broker and the client
/// agreed on (`connection.tune`). `Connection.openChannel()` refuses (`.invalidArgument`) once all are open.
public struct ChannelUsage: Sendable, Equatable {
    /// Channels open now.
    public let open: Int
    /// The most channels this connection may have open at once (the negotiated `channel_max`).
    public let limit: Int

    public init(open: Int, limit: Int) {
        self.open = open
        self.limit = limit
    }

    /// How many more channels can be opened now.
    public var free: Int { max(0, limit - open) }
}

extension Connection {
    /// The channels open on this connection and its limit (`channel_max`); throws `.closed` once it is closed.
    public func channelUsage() async throws -> ChannelUsage {
        try await core.perform("channel usage") { core in
            ChannelUsage(open: core.io.channelIDs.count, limit: Int(core.io.channelIDs.max))
        }
    }
}

extension ConnectionConfiguration {
    /// `heartbeat` as AMQP carries it: whole seconds, rounded to the nearest; nil when that is outside
    /// `OptionLimits.heartbeat` (0…65535), which AMQP's 16-bit field cannot hold.
    var heartbeatOnTheWire: Int32? {
        let seconds = heartbeat.secondsAsDouble.rounded()
        guard OptionLimits.heartbeat.contains(seconds) else { return nil }
        return Int32(seconds)
    }

    /// `heartbeatOnTheWire`, or an `.invalidArgument` error saying the allowed range.
    func checkedHeartbeat() throws -> Int32 {
        guard let seconds = heartbeatOnTheWire else {
            throw AMQPError(
                .invalidArgument, operation: "connect",
                message: "heartbeat must be from 0 to 65535 seconds (0 turns heartbeats off), got \(heartbeat)",
                hint: "set ConnectionConfiguration.heartbeat to a value in that range")
        }
        return seconds
    }
}

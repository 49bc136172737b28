import Testing

@testable import AMQP

/// Channel-number allocation, without a broker.
@Suite struct ChannelIDsTests {
    @Test func numbersStartAtOneAndNeverAreZero() throws {
        var ids = ChannelIDs(max: 5)
        let handedOut = try (1...5).map { _ in try ids.allocate() }
        #expect(handedOut == [1, 2, 3, 4, 5])
        #expect(!handedOut.contains(0), "channel 0 is the connection's own")
    }

    @Test func aReleasedNumberIsUsedAgainBeforeANewOne() throws {
        var ids = ChannelIDs(max: 10)
        for _ in 1...3 { _ = try ids.allocate() }
        ids.release(2)
        #expect(try ids.allocate() == 2)
        #expect(try ids.allocate() == 4)
        #expect(ids.count == 4)
    }

    @Test func allNumbersInUseIsAClearErrorAndAReleaseMakesRoom() throws {
        var ids = ChannelIDs(max: 3)
        for _ in 1...3 { _ = try ids.allocate() }
        let error = #expect(throws: AMQPError.self) { try ids.allocate() }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.message == "all 3 channels of this connection are open")
        ids.release(3)
        #expect(try ids.allocate() == 3)
    }

    /// `channel.open` answered by `channel.close` released the number twice (once for the close, once for the
    /// failed open): the next two channels then got the same number.
    @Test func releasingTwiceNeverHandsANumberOutTwice() throws {
        var ids = ChannelIDs(max: 10)
        let one = try ids.allocate()
        ids.release(one)
        ids.release(one)
        ids.release(7)  // never handed out
        let next = try ids.allocate()
        let after = try ids.allocate()
        #expect(next == one)
        #expect(after != one, "a number released twice is handed out once")
        #expect(after != 7, "a number never handed out is not in the free list")
    }

    /// With `channel_max` 65535 the counter passed the largest UInt16 after the last number (a crash).
    @Test func theWholeRangeUpTo65535IsHandedOutThenRefused() throws {
        var ids = ChannelIDs(max: 1)
        ids.negotiated(0)  // "no limit"
        #expect(ids.max == 65535)
        var last: UInt16 = 0
        for _ in 1...65535 { last = try ids.allocate() }
        #expect(last == 65535)
        #expect(throws: AMQPError.self) { try ids.allocate() }
        ids.negotiated(2047)
        #expect(ids.max == 2047)
    }
}

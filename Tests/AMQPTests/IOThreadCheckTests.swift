import Foundation
import Testing

@testable import AMQP

/// The rule "I/O thread only" is checked: confined connection state used from another thread stops a debug build.
@Suite struct IOThreadCheckTests {
    final class Confined {}

    @Test func theCheckerKnowsItsThread() async {
        let thread = IOThread()
        #expect(!thread.isCurrent, "not started: no thread is it")
        let seenOnIt = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            thread.start(name: "test-io", stackSize: 1 << 20) { continuation.resume(returning: thread.isCurrent) }
        }
        #expect(seenOnIt)
        #expect(!thread.isCurrent, "the test's own thread is not the I/O thread")
    }

    #if DEBUG
        /// What a child process that was stopped by the check wrote: the check's own message, so the test cannot
        /// pass on some other failure.
        static func stoppedByTheCheck(_ result: ExitTest.Result?) -> Bool {
            guard let result else { return false }
            let text = String(decoding: result.standardErrorContent, as: UTF8.self)
            return text.contains("is I/O thread only, but was used on another thread")
        }

        @Test func confinedStateUsedOffItsThreadStops() async throws {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let bound = IOThreadBound(Confined(), thread: IOThread())
                _ = bound.value
            }
            #expect(Self.stoppedByTheCheck(result), "\(result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? "")")
        }

        @Test func aLiveConnectionsStateUsedOffItsIOThreadStops() async throws {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let connection = try await TestBroker.connect()
                _ = connection.core.io.channels.count
            }
            #expect(Self.stoppedByTheCheck(result), "\(result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? "")")
        }
    #endif

    @Test func aLiveConnectionsStateIsUsableOnItsIOThread() async throws {
        let connection = try await TestBroker.connect()
        let channel = try await connection.openChannel()
        let open = try await connection.core.perform("test") { core in core.io.channels.count }
        #expect(open == 1)
        try await channel.close()
        await connection.close()
    }
}

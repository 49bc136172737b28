@testable import AMQPTasks
import Foundation
import Testing

/// Task ids are written as Celery writes them (`str(uuid4())`): lowercase, hyphens at 8-4-4-4-12.
@Suite struct UUIDStringTests {
    @Test func aUUIDIsWrittenAsFoundationWritesItInLowercase() throws {
        let fixed = try #require(UUID(uuidString: "6F1F4B0E-5C1A-4F4E-9A53-2F3C1B7D0E61"))
        #expect(fixed.lowercasedString == "6f1f4b0e-5c1a-4f4e-9a53-2f3c1b7d0e61")
        let edges = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                     UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))]
        for uuid in edges + (0..<1000).map({ _ in UUID() }) {
            #expect(uuid.lowercasedString == uuid.uuidString.lowercased())
        }
    }
}

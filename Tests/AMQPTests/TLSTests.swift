import AMQP
import Foundation
import Testing

/// The local broker listens for TLS with a certificate from a CA that `Deploy/broker start` made.
@Suite struct TLSTests {
    func tlsURL(_ query: String) -> String {
        "amqps://guest:guest@localhost:\(TestBroker.tlsPort)/%2f?\(query)"
    }

    @Test func connectsWithTheRightCAAndVerifiesThePeer() async throws {
        let connection = try await Connection.open(url: tlsURL("cacertfile=\(TestBroker.tlsFile("ca.pem"))"))
        #expect(connection.configuration.tls?.verifyPeer == true)
        let channel = try await connection.openChannel()
        let queue = try await channel.declareQueue("", durable: false, exclusive: true).name
        try await channel.confirmSelect()
        let body = Data(repeating: 7, count: 200_000)
        try await channel.publish(body, routingKey: queue)
        let delivery = try #require(try await channel.get(queue: queue, autoAck: true))
        #expect(delivery.body == body)
        await connection.close()
    }

    @Test func connectsWithAClientCertificate() async throws {
        let query = [
            "cacertfile=\(TestBroker.tlsFile("ca.pem"))",
            "certfile=\(TestBroker.tlsFile("client.pem"))",
            "keyfile=\(TestBroker.tlsFile("client.key"))",
        ].joined(separator: "&")
        let connection = try await Connection.open(url: tlsURL(query))
        _ = try await connection.openChannel()
        await connection.close()
    }

    @Test func refusesAServerSignedByAnotherCA() async throws {
        let error = await expectAMQPError {
            _ = try await Connection.open(url: self.tlsURL("cacertfile=\(TestBroker.tlsFile("other-ca.pem"))"))
        }
        #expect(error?.kind == .library)
        #expect(error?.hint?.contains("TLS") == true)
    }

    @Test func missingCAFileIsAClearError() async throws {
        let error = await expectAMQPError {
            _ = try await Connection.open(url: self.tlsURL("cacertfile=/nonexistent/ca.pem"))
        }
        #expect("\(error!)".contains("/nonexistent/ca.pem"))
    }
}

import AMQP
import Foundation
import Testing

/// A user with permissions on one vhost cannot reach another, and a vhost's queues are invisible from the others.
/// The fixtures (vhost `amqp-tasks-tenant`, user `tenant` with rights only there) come from Deploy/broker start.
@Suite struct VhostIsolationTests {
    static let tenantURL = "amqp://tenant:tenant-password@127.0.0.1:\(TestBroker.port)/amqp-tasks-tenant"

    @Test func aTenantWorksInItsOwnVhost() async throws {
        let connection = try await Connection.open(url: Self.tenantURL)
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let queue = uniqueName("tenant")
        try await channel.declareQueue(queue, durable: false, autoDelete: true)
        try await channel.publish(Data("mine".utf8), routingKey: queue)
        let delivery = try #require(try await channel.get(queue: queue, autoAck: true))
        #expect(String(decoding: delivery.body, as: UTF8.self) == "mine")
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    @Test func aTenantCannotOpenAnotherVhost() async throws {
        for vhost in ["%2f", "amqp-tasks-forbidden"] {
            let error = await expectAMQPError {
                _ = try await Connection.open(url: "amqp://tenant:tenant-password@127.0.0.1:\(TestBroker.port)/\(vhost)")
            }
            #expect(error?.kind == .connectionClosedByServer, "vhost \(vhost)")
            #expect(error?.replyCode == .notAllowed, "RabbitMQ refuses connection.open on a vhost without rights: 530")
            #expect(!"\(error!)".contains("tenant-password"), "the password is never in the message")
        }
    }

    @Test func aQueueInOneVhostIsInvisibleFromAnother() async throws {
        let tenant = try await Connection.open(url: Self.tenantURL)
        let queue = uniqueName("tenant-only")
        try await tenant.openChannel().declareQueue(queue, durable: false, autoDelete: false)
        let guest = try await Connection.open(url: TestBroker.url)
        let channel = try await guest.openChannel()
        let error = await expectAMQPError { _ = try await channel.inspectQueue(queue) }
        #expect(error?.replyCode == .notFound, "the default vhost has no queue of that name")
        // Publishing there from the default vhost reaches nothing: unroutable.
        let publisher = try await guest.openChannel()
        try await publisher.confirmSelect()
        let unroutable = await expectAMQPError {
            try await publisher.publish(Data("x".utf8), routingKey: queue, mandatory: true)
        }
        #expect(unroutable?.kind == .unroutable)
        try await tenant.openChannel().deleteQueue(queue)
        await tenant.close()
        await guest.close()
    }
}

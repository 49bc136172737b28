import AMQP
import AMQPTasks
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// amqp-worker under systemd's `Type=notify`: the real binary, with `NOTIFY_SOCKET` naming a unix datagram socket
/// this test binds (as systemd does), says it is not consuming while an exclusive consumer of the test keeps it from
/// its queue, READY=1 only once it consumes, and STOPPING=1 after SIGTERM; with a file-path socket and an
/// abstract-namespace (`@name`) one.
@Suite struct SystemdNotifyTests {
    @Test func pathSocketGetsReadyAfterConsumingAndStoppingAfterSigterm() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("amqp-notify-\(UUID().uuidString.prefix(8))").path
        let socket = try NotifySocket(bindingTo: path)
        defer { unlink(path) }
        try await expectReadyThenStopping(socket: socket, notifySocket: path)
    }

    @Test func abstractSocketGetsReadyAfterConsumingAndStoppingAfterSigterm() async throws {
        let name = "@amqp-notify-test-\(UUID().uuidString)"
        let socket = try NotifySocket(bindingTo: name)
        try await expectReadyThenStopping(socket: socket, notifySocket: name)
    }

    /// A STATUS text with a CR LF in it (a queue named so: RabbitMQ drops the line break from the name it declares,
    /// so the worker never consumes it and keeps saying so) reaches systemd as one field, its line feed sent as a
    /// space: a line break in the text never starts a field of its own.
    @Test func aLineBreakInTheStatusTextStartsNoField() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("amqp-notify-\(UUID().uuidString.prefix(8))").path
        let socket = try NotifySocket(bindingTo: path)
        defer { unlink(path) }
        let named = uniqueQueue("notify")
        let queue = named + "\r\nBOGUS=1"
        let worker = try NotifiedWorker(["--demo-tasks", "--queue", queue, "--grace", "5"], notifySocket: path)
        let seen = try await socket.receive(until: { $0.contains(named) }, while: { worker.process.isRunning })
        let fields = seen.last.map(fields(of:)) ?? []
        #expect(fields.contains { $0.hasPrefix("STATUS=") && $0.contains(named + "\r BOGUS=1") }, "\(fields)")
        #expect(!fields.contains { $0.hasPrefix("BOGUS=1") }, "\(fields)")
        worker.signal(SIGTERM)
        _ = try await worker.exitStatus()
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        for leftover in [named + "BOGUS=1", queue] { _ = try? await channel.deleteQueue(leftover) }
        await connection.close()
    }

    private func expectReadyThenStopping(socket: NotifySocket, notifySocket: String) async throws {
        let queue = uniqueQueue("notify")
        // The test's exclusive consumer keeps the worker from consuming (403, retried) until it is cancelled, so the
        // worker is running, connected and not ready: READY=1 must wait for its consumer.
        let connection = try await Connection.open(url: Broker.url)
        let channel = try await connection.openChannel()
        _ = try await channel.declareQueue(queue)
        let lock = try await channel.consume(queue: queue, exclusive: true)
        let worker = try NotifiedWorker(["--demo-tasks", "--queue", queue, "--grace", "5"], notifySocket: notifySocket)
        let blocked = try await socket.receive(until: { $0.contains("STATUS=connected, not consuming \(queue)") },
                                               while: { worker.process.isRunning })
        #expect(!blocked.contains { $0.contains("READY=1") }, "READY=1 before the worker could consume: \(blocked)")
        try await lock.cancel()

        let ready = try await socket.receive(until: { $0.contains("READY=1") }, while: { worker.process.isRunning })
        // READY=1 came once the worker consumed: the broker counts its consumer on the queue now (the test's own was
        // cancelled). Asked over AMQP: `rabbitmqctl list_consumers` fails part-way ({badrpc, …}) while other tests
        // delete queues, as a clean-clone CI run showed.
        let state = try await channel.inspectQueue(queue)
        #expect(state.consumerCount == 1, "READY=1 before the broker counted the worker's consumer on \(queue)")
        #expect(ready.last?.contains("STATUS=consuming \(queue)") == true, "\(ready)")

        worker.signal(SIGTERM)
        let stopping = try await socket.receive(until: { $0.contains("STOPPING=1") }, while: { worker.process.isRunning })
        #expect(stopping.last?.contains("STATUS=warm shutdown") == true, "\(stopping)")
        #expect(!stopping.contains { $0.contains("READY=1") }, "READY=1 sent twice: \(stopping)")
        #expect(try await worker.exitStatus() == 0)
        _ = try? await channel.deleteQueue(queue)
        await connection.close()
    }
}

/// The fields of a notification as systemd reads them: one a line, split at each line feed.
private func fields(of message: String) -> [String] {
    message.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
}

/// A unix datagram socket bound as systemd binds its notify socket: a file path, or `@name` (abstract namespace).
private final class NotifySocket: @unchecked Sendable {
    private let descriptor: Int32

    init(bindingTo name: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket(AF_UNIX, SOCK_DGRAM): errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(name.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 } else { path.append(0) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else { throw TestFailure("bind \(name): errno \(errno)") }
        // recv() returns every 200 ms without a datagram, so the wait below can check its deadline.
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Receives datagrams until one satisfies `done`, and returns every one received, that one last; fails once
    /// `alive` is false (the worker exited) or after 60 s (a safety net).
    func receive(until done: (String) -> Bool, while alive: () -> Bool) async throws -> [String] {
        let deadline = Date().addingTimeInterval(60)
        var seen: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                let message = String(decoding: buffer[0..<count], as: UTF8.self)
                seen.append(message)
                if done(message) { return seen }
            } else if !alive() {
                throw TestFailure("the worker exited; it notified: \(seen)")
            }
            await Task.yield()
        }
        throw TestFailure("no awaited notification within 60 s; got: \(seen)")
    }

    deinit { close(descriptor) }
}

/// The amqp-worker binary run with `NOTIFY_SOCKET` set (and its standard error kept for failure messages).
private final class NotifiedWorker: @unchecked Sendable {
    let process = Process()

    init(_ arguments: [String], notifySocket: String) throws {
        let binary = Broker.repoRoot.appendingPathComponent(".build/debug/amqp-worker")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestFailure("amqp-worker is not built at \(binary.path); run swift build first")
        }
        process.executableURL = binary
        process.arguments = ["--url", Broker.url] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notifySocket
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    func exitStatus() async throws -> Int32 {
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning {
            guard Date() < deadline else { throw TestFailure("amqp-worker did not exit within 30 s") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    deinit { if process.isRunning { process.terminate() } }
}

import AMQPTasks
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Serves `GET /metrics` (the Prometheus registry in text format) and `GET /healthz` (200 while the worker is
/// connected and consumes every configured queue, 503 otherwise) with swift-nio's HTTP/1 server; a `Service` in
/// amqp-worker's `ServiceGroup`, closed by the group's graceful shutdown.
struct MetricsServer: Service {
    let endpoint: MetricsEndpoint
    let responder: MetricsResponder
    let logger: Logger

    func run() async throws {
        let responder = self.responder
        let server: any Channel
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(responder: responder))
                    }
                }
                .bind(host: endpoint.host, port: endpoint.port).get()
        } catch {
            throw MetricsServerError(
                "could not listen on \(endpoint.host):\(endpoint.port) for /metrics and /healthz: \(error); choose another --metrics-port (or [worker] metrics_port), or stop what uses it"
            )
        }
        logger.info("serving /metrics and /healthz on http://\(endpoint.host):\(endpoint.port)")
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await server.closeFuture.get()
            } onGracefulShutdown: {
                server.close(promise: nil)
            }
        } onCancel: {
            server.close(promise: nil)
        }
    }
}

/// The metrics server could not start.
struct MetricsServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What `MetricsServer` answers to a request: pure, so it is easy to follow.
struct MetricsResponder: Sendable {
    let registry: PrometheusCollectorRegistry
    /// The worker whose `status` `/healthz` reports; nil when amqp-worker runs only the scheduler (`--beat`).
    let worker: Worker?

    struct Response {
        var status: HTTPResponseStatus
        var contentType = "text/plain; charset=utf-8"
        var body: [UInt8]
    }

    func respond(method: HTTPMethod, path: String) -> Response {
        guard method == .GET || method == .HEAD else {
            return Response(status: .methodNotAllowed, body: Array("only GET is served here\n".utf8))
        }
        switch path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path {
        case "/metrics":
            return Response(
                status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: registry.emitToBuffer())
        case "/healthz":
            guard let status = worker?.status else {
                return Response(status: .ok, body: Array("ok: only the scheduler runs here\n".utf8))
            }
            if status.isHealthy {
                return Response(status: .ok, body: Array("ok: connected, consuming \(status.queues.joined(separator: ", "))\n".utf8))
            }
            let why = status.connected
                ? "not consuming \(status.idleQueues.joined(separator: ", "))" : "not connected to the broker"
            return Response(status: .serviceUnavailable, body: Array("unhealthy: \(why)\n".utf8))
        default:
            return Response(status: .notFound, body: Array("not found: try /metrics or /healthz\n".utf8))
        }
    }
}

/// One HTTP/1 connection: answers each request with `MetricsResponder`, then closes unless the client keeps it alive.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: MetricsResponder
    private var head: HTTPRequestHead?

    init(responder: MetricsResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let response = responder.respond(method: head.method, path: head.uri)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: "\(response.body.count)")
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))),
                promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
            }
            let channel = context.channel
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }
}

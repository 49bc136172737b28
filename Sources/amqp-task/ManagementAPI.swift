import AMQP
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The few numbers of RabbitMQ's management HTTP API that AMQP itself cannot give (unacknowledged counts).
///
/// The API takes the broker user's password as HTTP Basic auth, which plain `http://` carries readably: it is
/// sent over `https://`, or over `http://` to this host (loopback), and over plain `http://` to another host only
/// when the operator allowed it (`--management-allow-http`). Otherwise no request is made and `refusal` says why.
struct ManagementAPI {
    let base: String
    /// Why the API is not asked (credentials would cross the network unencrypted), or nil.
    let refusal: String?
    private let authorization: String?

    /// - Parameter url: the API's base URL; default `https://HOST:15671` for an `amqps://` broker, else
    ///   `http://HOST:15672`.
    init(url: String?, broker: ConnectionConfiguration, allowPlainHTTP: Bool = false) {
        let host = broker.host.contains(":") ? "[\(broker.host)]" : broker.host
        base = url ?? (broker.tls != nil ? "https://\(host):15671" : "http://\(host):15672")
        if let problem = Self.plainTextProblem(base, allowPlainHTTP: allowPlainHTTP) {
            refusal = problem
            authorization = nil
        } else {
            refusal = nil
            authorization = "Basic " + Data("\(broker.user):\(broker.password)".utf8).base64EncodedString()
        }
    }

    /// Why `base` must not carry the password, or nil when it may.
    static func plainTextProblem(_ base: String, allowPlainHTTP: Bool) -> String? {
        guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https"
        else { return "the management URL \(ConnectionConfiguration.masked(base)) is not an http:// or https:// URL" }
        if scheme == "https" || allowPlainHTTP || isLoopback(url.host) { return nil }
        return "not sending the broker password to \(url.host ?? base) over plain http:// (anyone on the path could read it); use --management-url https://HOST:15671, or --management-allow-http on a network you trust"
    }

    /// True for this machine's own addresses: `localhost`, 127.0.0.0/8 and `::1`.
    static func isLoopback(_ host: String?) -> Bool {
        guard var host = host?.lowercased() else { return false }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Unacknowledged messages of `queue`, or nil when the API cannot (or may not) be asked.
    func unacknowledged(queue: String, vhost: String) async -> Int? {
        guard let authorization else { return nil }
        let path = [vhost, queue].map { $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0 }
        guard let url = URL(string: "\(base)/api/queues/\(path[0])/\(path[1])") else { return nil }
        var request = URLRequest(url: url, timeoutInterval: 3)
        request.setValue(authorization, forHTTPHeaderField: "Authorization")
        guard let (data, response) = try? await URLSession.shared.data(for: request),
            (response as? HTTPURLResponse)?.statusCode == 200,
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        // A queue the statistics collector has not sampled yet (every 5 s) has no counts: none are unacked.
        return (object["messages_unacknowledged"] as? Int) ?? (object["messages_unacknowledged"] as? NSNumber)?.intValue ?? 0
    }
}

import AMQP
import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The few numbers of RabbitMQ's management HTTP API that AMQP itself cannot give (unacknowledged counts).
struct ManagementAPI {
    let base: String
    private let authorization: String

    init(url: String?, broker: ConnectionConfiguration) {
        base = url ?? "http://\(broker.host):15672"
        authorization = "Basic " + Data("\(broker.user):\(broker.password)".utf8).base64EncodedString()
    }

    /// Unacknowledged messages of `queue`, or nil when the API cannot be reached.
    func unacknowledged(queue: String, vhost: String) async -> Int? {
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

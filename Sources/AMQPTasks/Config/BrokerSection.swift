import AMQP
import FoundationEssentials

/// Reads `[broker]` into `BrokerSettings`: each URL parsed over the section's heartbeat, timeout and TLS files into a
/// typed `ConnectionConfiguration`, each bad URL reported under its own key.
enum BrokerSection {
    static func read(_ r: TableReader) -> BrokerSettings {
        r.allowOnly(["url", "urls", "heartbeat", "connection_timeout", "ca_file", "cert_file", "key_file"])
        let limits = ConnectionConfiguration.OptionLimits.self
        let heartbeat = r.within("heartbeat", r.int("heartbeat").map(Double.init), limits.heartbeat, "seconds")
        // In seconds here, in milliseconds in a URL; inf or 1e300 would not survive the conversion.
        let timeout = r.within(
            "connection_timeout", r.number("connection_timeout"),
            limits.connectionTimeout.lowerBound / 1000...limits.connectionTimeout.upperBound / 1000, "seconds")
        let section = BrokerSettings(
            checkedURL: BrokerSettings.defaultURL, connections: [], heartbeat: heartbeat.map { .seconds($0) },
            connectionTimeout: timeout.map { .seconds($0) }, caFile: r.string("ca_file"), certFile: r.string("cert_file"),
            keyFile: r.string("key_file"))

        var urls: [(key: String, url: String)] = []
        if let url = r.string("url") {
            urls += ConnectionConfiguration.urls(in: url).map { (r.key("url"), $0) }
        }
        for (index, url) in (r.stringArray("urls") ?? []).enumerated() { urls.append(("\(r.key("urls"))[\(index)]", url)) }
        if r.table["url"] != nil, r.table["urls"] != nil {
            r.context.error(r.key("urls"), "give url or urls (a cluster's nodes), not both")
        }
        if urls.isEmpty { urls = [(r.key("url"), BrokerSettings.defaultURL)] }
        let hasTLSFiles = section.caFile != nil || section.certFile != nil || section.keyFile != nil
        var valid: [(url: String, connection: ConnectionConfiguration)] = []
        for (key, url) in urls {
            do {
                let connection = try ConnectionConfiguration(url: url, over: section.options)
                if hasTLSFiles, connection.tls == nil {
                    r.context.error(
                        key, "\(ConnectionConfiguration.masked(url)): ca_file, cert_file and key_file need an amqps:// URL")
                }
                valid.append((url, connection))
            } catch let error as AMQPError {
                r.context.error(key, error.message)
            } catch {}
        }
        guard !valid.isEmpty else { return section }
        return BrokerSettings(
            checkedURL: valid.map(\.url).joined(separator: ","), connections: valid.map(\.connection),
            heartbeat: section.heartbeat, connectionTimeout: section.connectionTimeout, caFile: section.caFile,
            certFile: section.certFile, keyFile: section.keyFile)
    }
}

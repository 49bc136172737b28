import FoundationEssentials

/// A start granted by a cluster-wide rate limit (`rate_limit_scope = "cluster"`): the token a worker took from the
/// broker before it ran the task. Each token is taken once; `id` names it across the cluster (the refiller that
/// issued it and its sequence number there). A handler sees the token of the task it runs as
/// `RateLimitToken.current` (nil for a task without a cluster-wide limit).
public struct RateLimitToken: Sendable, Hashable, CustomStringConvertible {
    /// The refiller that issued it (a worker's hostname and instance).
    public let refiller: String
    /// Its number among the tokens of that refiller (all tasks).
    public let sequence: Int
    /// When the refiller issued it (the refiller's clock).
    public let issuedAt: Date
    /// When this worker took it (this worker's clock): the moment the task was allowed to start. The limit bounds
    /// these moments; the handler starts after it, as soon as the worker gets to it.
    public internal(set) var takenAt: Date

    /// The token of the task that runs now, when its task has a cluster-wide rate limit.
    @TaskLocal public static var current: RateLimitToken?

    public init(refiller: String, sequence: Int, issuedAt: Date, takenAt: Date? = nil) {
        self.refiller = refiller
        self.sequence = sequence
        self.issuedAt = issuedAt
        self.takenAt = takenAt ?? issuedAt
    }

    /// The `type` property of the messages a refiller issues as tokens: a message in a token queue without it (anyone
    /// who may publish to the queue could put one there) is not a token, and is rejected.
    static let messageType = "amqp-tasks.rate-limit-token"

    /// Names the token across the cluster.
    public var id: String { "\(refiller)#\(sequence)" }
    public var description: String { id }

    /// The token as a message body: `{"refiller": …, "sequence": …, "issued_at": <seconds since 1970>}`.
    var body: Data {
        JSONValue.object([
            "refiller": .string(refiller), "sequence": .int(sequence),
            "issued_at": .double(issuedAt.timeIntervalSince1970),
        ]).jsonData()
    }

    /// Reads a token; nil for a body that is not one (anyone who may publish to the queue could put it there).
    static func parse(_ body: Data) -> RateLimitToken? {
        guard let value = try? JSONValue.parse(body), let refiller = value["refiller"]?.stringValue,
            let sequence = value["sequence"]?.intValue, let seconds = value["issued_at"]?.doubleValue
        else { return nil }
        return RateLimitToken(refiller: refiller, sequence: sequence, issuedAt: Date(timeIntervalSince1970: seconds))
    }
}

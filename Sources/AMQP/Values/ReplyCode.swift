/// An AMQP 0-9-1 reply code, as the server sends it in `connection.close`, `channel.close` and `basic.return`.
///
/// A `RawRepresentable` struct rather than an enum so that codes a future server sends still fit, while the
/// named constants make `switch error.replyCode { case .notFound: ... }` read as the spec does.
public struct ReplyCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let success = ReplyCode(rawValue: 200)
    public static let contentTooLarge = ReplyCode(rawValue: 311)
    public static let noRoute = ReplyCode(rawValue: 312)
    public static let noConsumers = ReplyCode(rawValue: 313)
    public static let connectionForced = ReplyCode(rawValue: 320)
    public static let invalidPath = ReplyCode(rawValue: 402)
    public static let accessRefused = ReplyCode(rawValue: 403)
    public static let notFound = ReplyCode(rawValue: 404)
    public static let resourceLocked = ReplyCode(rawValue: 405)
    public static let preconditionFailed = ReplyCode(rawValue: 406)
    public static let frameError = ReplyCode(rawValue: 501)
    public static let syntaxError = ReplyCode(rawValue: 502)
    public static let commandInvalid = ReplyCode(rawValue: 503)
    public static let channelError = ReplyCode(rawValue: 504)
    public static let unexpectedFrame = ReplyCode(rawValue: 505)
    public static let resourceError = ReplyCode(rawValue: 506)
    public static let notAllowed = ReplyCode(rawValue: 530)
    public static let notImplemented = ReplyCode(rawValue: 540)
    public static let internalError = ReplyCode(rawValue: 541)

    /// The spec's name of the code, e.g. `NOT_FOUND`.
    public var name: String {
        switch rawValue {
        case 200: "REPLY_SUCCESS"
        case 311: "CONTENT_TOO_LARGE"
        case 312: "NO_ROUTE"
        case 313: "NO_CONSUMERS"
        case 320: "CONNECTION_FORCED"
        case 402: "INVALID_PATH"
        case 403: "ACCESS_REFUSED"
        case 404: "NOT_FOUND"
        case 405: "RESOURCE_LOCKED"
        case 406: "PRECONDITION_FAILED"
        case 501: "FRAME_ERROR"
        case 502: "SYNTAX_ERROR"
        case 503: "COMMAND_INVALID"
        case 504: "CHANNEL_ERROR"
        case 505: "UNEXPECTED_FRAME"
        case 506: "RESOURCE_ERROR"
        case 530: "NOT_ALLOWED"
        case 540: "NOT_IMPLEMENTED"
        case 541: "INTERNAL_ERROR"
        default: "UNKNOWN"
        }
    }

    public var description: String { "\(rawValue) \(name)" }
}

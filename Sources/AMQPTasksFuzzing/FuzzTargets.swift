import AMQP
import AMQPTasks
import Foundation

/// The decoders that read bytes from the network or from disk, driven by one fuzz input each.
///
/// The libFuzzer harness (`Tests/Fuzz`, run by `Tests/Fuzz/run`) feeds random inputs here, and `FuzzRegressionTests`
/// replays the seed corpus and every input that once crashed (`Tests/Fuzz/regressions`). An input's first byte picks
/// the decoder; the rest is its text:
///
/// | byte 0 % 4 | decoder | rest of the input |
/// |---|---|---|
/// | 0 | `TaskMessage.decode` | headers as a JSON object, a newline, then the body |
/// | 1 | `ResultMessage.decode` | the body |
/// | 2 | `TasksConfiguration.parse` | TOML text |
/// | 3 | `JSONValue.parse` | JSON text |
///
/// Decoders may throw on bad input, never crash; and what one accepts must survive a round trip (encoded again, it
/// decodes to the same thing), or `run` stops the process with a message saying which property broke.
public enum FuzzTargets {
    /// Runs one input through the decoder it selects; true when the decoder accepted it (and its round trip held).
    @discardableResult
    public static func run(_ input: Data) -> Bool {
        guard let selector = input.first else { return false }
        let rest = Data(input.dropFirst())
        switch selector % 4 {
        case 0: return taskMessage(rest)
        case 1: return resultMessage(rest)
        case 2: return configuration(rest)
        default: return json(rest)
        }
    }

    /// Builds an input for `decoder` (0–3) from its text, as the seed corpus does.
    public static func input(decoder: UInt8, _ text: Data) -> Data {
        Data([decoder]) + text
    }

    static func taskMessage(_ data: Data) -> Bool {
        let newline = data.firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
        var properties = BasicProperties(contentType: "application/json", contentEncoding: "utf-8")
        if case .object(let headers)? = try? JSONValue.parse(Data(data[data.startIndex..<newline])) {
            properties.headers = FieldTable(headers.sorted { $0.key < $1.key }.map { (key: $0.key, value: FieldValue(json: $0.value)) })
            properties.correlationId = headers["id"]?.stringValue
        }
        let body = newline < data.endIndex ? Data(data[(newline + 1)...]) : Data()
        guard let message = try? TaskMessage.decode(properties: properties, body: body) else { return false }
        admit(message)
        let (encodedProperties, encodedBody) = message.encode()
        let again: TaskMessage
        do {
            again = try TaskMessage.decode(properties: encodedProperties, body: encodedBody)
        } catch {
            fatalError("a task message we decoded does not decode after encoding it again: \(error)")
        }
        guard again.id == message.id, again.name == message.name, again.args == message.args,
            again.kwargs == message.kwargs, again.retries == message.retries
        else {
            fatalError("a task message changed in a round trip: \(message.id) \(message.name)")
        }
        return true
    }

    /// What the worker decides from the headers before running a task: it must never trap, and its times must hold.
    static func admit(_ message: TaskMessage) {
        let now = Date()
        switch message.admission(now: now, configuredTimeLimit: .seconds(30)) {
        case .expired:
            guard let expires = message.expiresDate, expires < now else { fatalError("expired without a past expires") }
        case .wait(let remaining, let step):
            guard remaining > TaskMessage.etaHoldLimit, step >= .seconds(1),
                step <= .seconds(NativeDelayedDelivery.longestDelaySeconds),
                step >= min(remaining, .seconds(NativeDelayedDelivery.longestDelaySeconds)),
                step < remaining + .seconds(1), step.components.attoseconds == 0
            else { fatalError("a wait of \(remaining) got the step \(step)") }
            // The eta written back (as a retry writes it) reads again.
            guard let eta = message.etaDate, CeleryTime.parse(CeleryTime.format(eta)) != nil else {
                fatalError("an eta did not survive formatting: \(message.eta ?? "")")
            }
        case .hold(let remaining):
            guard remaining > .zero, remaining <= TaskMessage.etaHoldLimit, let eta = message.etaDate, eta > now else {
                fatalError("a hold of \(remaining) for eta \(message.eta ?? "nil")")
            }
        case .run(let limit):
            if let eta = message.etaDate, eta > now { fatalError("a task would run before its eta \(message.eta ?? "")") }
            if let limit, limit <= .zero { fatalError("a time limit of \(limit) would reach the handler") }
        }
        for signature in (message.embed.callbacks ?? []) + (message.embed.errbacks ?? []) + (message.embed.chain ?? []) {
            _ = TaskSignature(json: signature)
        }
    }

    static func resultMessage(_ data: Data) -> Bool {
        guard let result = try? ResultMessage.decode(body: data) else { return false }
        let outgoing = result.outgoing(replyTo: "fuzz", persistent: false)
        do {
            let again = try ResultMessage.decode(body: outgoing.body)
            guard again.taskId == result.taskId, again.status == result.status, again.result == result.result else {
                fatalError("a result message changed in a round trip: \(result.taskId)")
            }
        } catch {
            fatalError("a result message we decoded does not decode after encoding it again: \(error)")
        }
        return true
    }

    static func configuration(_ data: Data) -> Bool {
        (try? TasksConfiguration.parse(String(decoding: data, as: UTF8.self), file: "fuzz.toml", environment: [:])) != nil
    }

    static func json(_ data: Data) -> Bool {
        guard let value = try? JSONValue.parse(data) else { return false }
        do {
            let again = try JSONValue.parse(value.jsonData())
            guard again == value else { fatalError("JSON changed in a round trip: \(value.jsonString.prefix(200))") }
        } catch {
            fatalError("JSON we parsed does not parse after writing it again: \(error)")
        }
        return true
    }
}

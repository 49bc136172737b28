import AMQPTasks
import Foundation

/// Shows the custom states (PROGRESS and the like) of a task `amqp-task send --wait` waits for, on stderr: on a
/// terminal, a state whose meta has numeric `current` and `total` redraws one progress bar line; elsewhere (a pipe,
/// a file, CI logs) each state is one plain line `STATE {meta}`, so nothing is full of carriage returns.
struct ProgressDisplay {
    let taskName: String
    let isTerminal: Bool
    private var barShown = false

    init(taskName: String, isTerminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.taskName = taskName
        self.isTerminal = isTerminal
    }

    /// Shows `state` if it is a custom one; STARTED, RETRY and the final state are not shown.
    mutating func show(_ state: ResultMessage) {
        guard state.status.isCustom else { return }
        if isTerminal, let (current, total) = Self.fraction(state.result) {
            write("\r\u{1B}[K" + Self.bar(taskName, current: current, total: total))
            barShown = true
        } else {
            endBar()
            write("\(state.status) \(state.result.jsonString)\n")
        }
    }

    /// Ends the bar's line, so what follows starts on a line of its own.
    mutating func endBar() {
        if barShown { write("\n") }
        barShown = false
    }

    /// `demo.progress [############------------------] 2/5  40%`
    static func bar(_ name: String, current: Double, total: Double, width: Int = 30) -> String {
        let ratio = total > 0 ? min(max(current / total, 0), 1) : 0
        let filled = Int((ratio * Double(width)).rounded(.down))
        let number = { (value: Double) in value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)" }
        let percent = String(format: "%3d%%", Int((ratio * 100).rounded(.down)))
        return "\(name) [\(String(repeating: "#", count: filled))\(String(repeating: "-", count: width - filled))] \(number(current))/\(number(total)) \(percent)"
    }

    /// `current` and `total` of a meta that has both as numbers.
    static func fraction(_ meta: JSONValue) -> (Double, Double)? {
        guard let current = meta["current"]?.doubleValue, let total = meta["total"]?.doubleValue,
            current.isFinite, total.isFinite
        else { return nil }
        return (current, total)
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

import ArgumentParser
import Glibc
import JobObjects

/// `jobsup run`'s options about signals and init's status, as given on the
/// command line; `parsed()` checks them.
struct SignalFlags: Equatable {
    /// `--rewrite-signal FROM:TO`, repeatable.
    var rewrite: [String] = []
    /// `--success-exit STATUS`, repeatable.
    var successExit: [String] = []
    /// `--parent-death-signal SIGNAL`.
    var parentDeathSignal: String?
    /// `--reset-signals`.
    var resetSignals = false

    struct Parsed: Equatable {
        var rewrites: [Int32: Int32] = [:]
        /// Init statuses (as the shell reports them) that jobsup exits 0 for.
        var successStatuses: Set<Int32> = []
        var parentDeathSignal: Int32?
        var resetSignals = false
    }

    func parsed() throws(ValidationError) -> Parsed {
        var parsed = Parsed(resetSignals: resetSignals)
        for value in rewrite {
            let parts = value.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let from = SignalArgument(argument: String(parts[0]))?.number,
                let to = parts[1] == "0" ? 0 : SignalArgument(argument: String(parts[1]))?.number
            else {
                throw ValidationError(
                    "invalid --rewrite-signal \(quoted(value)): give FROM:TO, each a signal name or number, e.g. TERM:QUIT (TO 0 drops FROM)"
                )
            }
            guard SignalPolicy.catchable.contains(from) else {
                throw ValidationError(
                    "invalid --rewrite-signal \(quoted(value)): jobsup does not catch \(signalName(from)); \(Self.uncaughtReason)")
            }
            guard parsed.rewrites.updateValue(to, forKey: from) == nil else {
                throw ValidationError("--rewrite-signal names \(signalName(from)) twice; give one rewrite for each signal")
            }
        }
        for value in successExit {
            guard let status = Int32(value), (0...255).contains(status) else {
                throw ValidationError("invalid --success-exit \(quoted(value)): give an exit status from 0 to 255 (128+N for signal N)")
            }
            parsed.successStatuses.insert(status)
        }
        if let value = parentDeathSignal {
            guard let signal = SignalArgument(argument: value)?.number else {
                throw ValidationError("invalid --parent-death-signal \(quoted(value)): give a signal name or number, e.g. TERM")
            }
            guard SignalPolicy.catchable.contains(signal) else {
                throw ValidationError(
                    "invalid --parent-death-signal \(quoted(value)): jobsup does not catch \(signalName(signal)); \(Self.uncaughtReason)")
            }
            parsed.parentDeathSignal = signal
        }
        return parsed
    }

    static let uncaughtReason =
        "it cannot catch SIGKILL or SIGSTOP, and leaves SIGCHLD to itself (it is how it hears of its children)"
}

/// `value` in quotes for a message, cut short when long (see
/// `quotedForMessage`).
func quoted(_ value: String) -> String { quotedForMessage(value) }

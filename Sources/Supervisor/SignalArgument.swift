import ArgumentParser
import JobObjects

/// A signal by name or number: TERM, SIGTERM, sigterm, 15, RTMIN+2 (see
/// `Signal(name:)`).
struct SignalArgument: ExpressibleByArgument {
    let number: Int32

    init?(argument: String) {
        guard let signal = Signal(name: argument) else { return nil }
        number = signal.rawValue
    }

    static var defaultCompletionKind: CompletionKind { .list(["TERM", "KILL", "INT", "HUP", "USR1", "USR2", "STOP", "CONT"]) }
}

import ArgumentParser
import Glibc
import JobObjects

/// A signal by name or number: TERM, SIGTERM, sigterm, 15.
struct SignalArgument: ExpressibleByArgument {
    let number: Int32

    init?(argument: String) {
        if let n = Int32(argument) {
            guard (1...64).contains(n) else { return nil }
            number = n
            return
        }
        var name = argument.uppercased()
        if !name.hasPrefix("SIG") { name = "SIG" + name }
        guard let n = (1...31).first(where: { signalName(Int32($0)) == name }) else { return nil }
        number = Int32(n)
    }

    static var defaultCompletionKind: CompletionKind { .list(["TERM", "KILL", "INT", "HUP", "USR1", "USR2", "STOP", "CONT"]) }
}

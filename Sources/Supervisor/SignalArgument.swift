import ArgumentParser
import Glibc
import JobObjects

/// A signal by name or number: TERM, SIGTERM, sigterm, 15, RTMIN+2.
struct SignalArgument: ExpressibleByArgument {
    let number: Int32

    init?(argument: String) {
        if let n = Int32(argument) {
            guard (1...64).contains(n) else { return nil }
            number = n
            return
        }
        var name = argument.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if let n = Self.realtime(name) {
            number = n
            return
        }
        guard let n = (1...31).first(where: { signalName(Int32($0)) == "SIG" + name }) else { return nil }
        number = Int32(n)
    }

    /// RTMIN, RTMIN+N, RTMAX, RTMAX-N, within the range glibc leaves to programs.
    private static func realtime(_ name: String) -> Int32? {
        let low = __libc_current_sigrtmin(), high = __libc_current_sigrtmax()
        let signal: Int32?
        if name == "RTMIN" {
            signal = low
        } else if name == "RTMAX" {
            signal = high
        } else if name.hasPrefix("RTMIN+"), let n = Int32(name.dropFirst(6)), n >= 0, n <= high - low {
            signal = low + n
        } else if name.hasPrefix("RTMAX-"), let n = Int32(name.dropFirst(6)), n >= 0, n <= high - low {
            signal = high - n
        } else {
            signal = nil
        }
        return signal
    }

    static var defaultCompletionKind: CompletionKind { .list(["TERM", "KILL", "INT", "HUP", "USR1", "USR2", "STOP", "CONT"]) }
}

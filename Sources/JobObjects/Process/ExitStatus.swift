import CJobShim
import Glibc

/// How a process ended, as `waitid` reports it.
public enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
    /// It called `exit(code)`.
    case exited(code: Int32)
    /// A signal ended it; `coreDumped` when it left a core.
    case signaled(signal: Int32, coreDumped: Bool)
    /// Someone else in this process reaped it first (e.g. `waitpid(-1)`), so
    /// the status is lost. The library never does this to its own processes.
    case unknown

    init(_ info: siginfo_t) {
        var info = info
        let status = jobshim_siginfo_status(&info)
        switch jobshim_siginfo_code(&info) {
        case CInt(CLD_EXITED): self = .exited(code: status)
        case CInt(CLD_KILLED): self = .signaled(signal: status, coreDumped: false)
        case CInt(CLD_DUMPED): self = .signaled(signal: status, coreDumped: true)
        default: self = .unknown
        }
    }

    /// The status a shell would report: the code, or 128 + the signal.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal, _): 128 + signal
        case .unknown: 255
        }
    }

    /// True unless it exited with code 0.
    public var isAbnormal: Bool {
        if case .exited(0) = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case .exited(let code): "exited with code \(code)"
        case .signaled(let signal, let core):
            "killed by signal \(signal) (\(signalName(signal)))" + (core ? ", core dumped" : "")
        case .unknown: "exit status unknown (reaped elsewhere)"
        }
    }
}

/// "SIGTERM" for 15, as strsignal would name it but stable; "SIGRTMIN+2"
/// for a real-time signal. (`Signal.name` is the same.)
public func signalName(_ signal: Int32) -> String {
    let realTime = Signal.realTime
    if realTime.contains(signal) {
        return signal == realTime.lowerBound ? "SIGRTMIN" : "SIGRTMIN+\(signal - realTime.lowerBound)"
    }
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
        SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1",
        SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
        SIGCHLD: "SIGCHLD", SIGCONT: "SIGCONT", SIGSTOP: "SIGSTOP", SIGTSTP: "SIGTSTP", SIGTTIN: "SIGTTIN",
        SIGTTOU: "SIGTTOU", SIGURG: "SIGURG", SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ", SIGVTALRM: "SIGVTALRM",
        SIGPROF: "SIGPROF", SIGWINCH: "SIGWINCH", SIGIO: "SIGIO", SIGPWR: "SIGPWR", SIGSYS: "SIGSYS",
        SIGSTKFLT: "SIGSTKFLT",
    ]
    return names[signal] ?? "signal \(signal)"
}

import Glibc

/// A POSIX signal, by number, with its conventional name.
///
/// ```swift
/// try process.signal(.terminate)
/// try job.signal(.hangup)
/// let rt = Signal(Signal.realTime.lowerBound + 2)   // SIGRTMIN+2
/// Signal(name: "usr1")              // .user1 ("USR1", "SIGUSR1", "10" work too)
/// ```
///
/// A `Signal` holds any number; whether the kernel accepts it is checked
/// when it is sent (numbers outside 1...64 fail there with `EINVAL`).
public struct Signal: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The signal's number.
    public let rawValue: Int32

    /// The signal numbered `rawValue`.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The signal numbered `number` (SIGTERM, SIGRTMIN + 1 …).
    public init(_ number: Int32) { self.rawValue = number }

    /// SIGHUP: the terminal hung up; daemons reload.
    public static let hangup = Signal(SIGHUP)
    /// SIGINT: ^C at a terminal.
    public static let interrupt = Signal(SIGINT)
    /// SIGQUIT: ctrl-backslash at a terminal; ends with a core dump by default.
    public static let quit = Signal(SIGQUIT)
    /// SIGABRT: abort(3).
    public static let abort = Signal(SIGABRT)
    /// SIGKILL: ends a process; it cannot be caught.
    public static let kill = Signal(SIGKILL)
    /// SIGUSR1: for the program to define.
    public static let user1 = Signal(SIGUSR1)
    /// SIGUSR2: for the program to define.
    public static let user2 = Signal(SIGUSR2)
    /// SIGPIPE: a write to a pipe nobody reads.
    public static let pipe = Signal(SIGPIPE)
    /// SIGALRM: alarm(2) expired.
    public static let alarm = Signal(SIGALRM)
    /// SIGTERM: the polite request to end.
    public static let terminate = Signal(SIGTERM)
    /// SIGCHLD: a child exited, stopped or continued.
    public static let child = Signal(SIGCHLD)
    /// SIGCONT: a stopped process goes on.
    public static let resume = Signal(SIGCONT)
    /// SIGSTOP: stops a process; it cannot be caught.
    public static let stop = Signal(SIGSTOP)
    /// SIGTSTP: a terminal's ^Z; it can be caught.
    public static let suspend = Signal(SIGTSTP)
    /// SIGWINCH: the terminal changed size.
    public static let windowSizeChange = Signal(SIGWINCH)

    /// "SIGTERM" for 15; "SIGRTMIN+2" for a real-time signal; "signal N"
    /// for a number no signal has.
    public var name: String { signalName(rawValue) }

    public var description: String { name }

    /// The signal named `name`: "TERM", "SIGTERM" or "term", "RTMIN+2",
    /// or a number ("15"). Nil for anything else.
    public init?(name: String) {
        if let number = Int32(name), number > 0, number <= 64 {
            self.init(number)
            return
        }
        var upper = name.uppercased()
        if upper.hasPrefix("SIG") { upper.removeFirst(3) }
        if let number = Self.numbersByName[upper] {
            self.init(number)
            return
        }
        let low = Self.realTime.lowerBound
        let high = Self.realTime.upperBound
        for (base, sign) in [("RTMIN", Int32(1)), ("RTMAX", Int32(-1))] where upper.hasPrefix(base) {
            let rest = upper.dropFirst(base.count)
            let offset: Int32? = rest.isEmpty ? 0 : (rest.first == (sign > 0 ? "+" : "-") ? Int32(rest.dropFirst()) : nil)
            guard let offset, offset >= 0, offset <= high - low else { return nil }
            self.init(sign > 0 ? low + offset : high - offset)
            return
        }
        return nil
    }

    /// The real-time signals glibc leaves to programs (SIGRTMIN...SIGRTMAX;
    /// it keeps the first two or three for itself).
    public static var realTime: ClosedRange<Int32> { __libc_current_sigrtmin()...__libc_current_sigrtmax() }

    private static let numbersByName: [String: Int32] = [
        "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ILL": SIGILL, "TRAP": SIGTRAP, "ABRT": SIGABRT,
        "IOT": SIGABRT, "BUS": SIGBUS, "FPE": SIGFPE, "KILL": SIGKILL, "USR1": SIGUSR1, "SEGV": SIGSEGV,
        "USR2": SIGUSR2, "PIPE": SIGPIPE, "ALRM": SIGALRM, "TERM": SIGTERM, "STKFLT": SIGSTKFLT,
        "CHLD": SIGCHLD, "CLD": SIGCHLD, "CONT": SIGCONT, "STOP": SIGSTOP, "TSTP": SIGTSTP, "TTIN": SIGTTIN,
        "TTOU": SIGTTOU, "URG": SIGURG, "XCPU": SIGXCPU, "XFSZ": SIGXFSZ, "VTALRM": SIGVTALRM,
        "PROF": SIGPROF, "WINCH": SIGWINCH, "IO": SIGIO, "POLL": SIGIO, "PWR": SIGPWR, "SYS": SIGSYS,
    ]
}

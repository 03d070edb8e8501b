import Glibc

/// Terminal pass-through for interactive payloads, as tini does: when
/// jobsup's stdin is its controlling terminal and jobsup is the foreground
/// process group, init gets a process group of its own and becomes the
/// foreground group (tcsetpgrp), so the terminal's ^C, ^\ and job control
/// reach the payload and reads from the terminal work; jobsup takes the
/// terminal back when init has exited.
///
/// The spawn path runs no code of ours between fork and exec, so init is
/// made the foreground group just after it exec'd; had it touched the
/// terminal in between, the kernel stopped it (SIGTTIN/SIGTTOU), and the
/// SIGCONT sent with the hand-over resumes it.
struct TerminalForeground {
    let fd: Int32
    let originalGroup: pid_t

    /// The terminal to hand over, or nil when stdin is no terminal or jobsup
    /// is not in the foreground (running in the background of a shell).
    static func ifInteractive() -> TerminalForeground? {
        guard isatty(0) == 1 else { return nil }
        let group = tcgetpgrp(0)
        guard group > 0, group == getpgrp() else { return nil }
        return TerminalForeground(fd: 0, originalGroup: group)
    }

    /// Whether jobsup's process group holds the terminal now (after `fg`,
    /// not after `bg`).
    var jobsupIsForeground: Bool { tcgetpgrp(fd) == originalGroup }

    /// Makes `group` (init's process group, led by init) the foreground group.
    func handOver(to group: pid_t) {
        if Self.withSIGTTOUBlocked({ tcsetpgrp(fd, group) }) == 0 {
            _ = kill(-group, SIGCONT)
        }
    }

    /// Gives the terminal back to jobsup's process group.
    func restore() {
        _ = Self.withSIGTTOUBlocked { tcsetpgrp(fd, originalGroup) }
    }

    /// tcsetpgrp from a background group raises SIGTTOU unless it is
    /// blocked; it is blocked on this thread only (never ignored: ignored
    /// dispositions would be inherited by the payload).
    private static func withSIGTTOUBlocked(_ body: () -> Int32) -> Int32 {
        var block = sigset_t()
        var previous = sigset_t()
        sigemptyset(&block)
        sigaddset(&block, SIGTTOU)
        pthread_sigmask(SIG_BLOCK, &block, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        return body()
    }
}

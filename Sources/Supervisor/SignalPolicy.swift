import CJobShim
import Glibc
import JobObjects

/// Which signals `jobsup run` catches and what it does with each, and the
/// signal state its init starts with.
///
/// jobsup catches every signal that can be caught but SIGCHLD, which is how
/// it hears of its children. SIGTSTP, SIGTTIN and SIGTTOU stop the whole
/// job, SIGCONT resumes it and is passed on, and every other one is passed
/// on to init (or the job) — the synchronous ones (SIGSEGV, SIGBUS, SIGILL,
/// SIGFPE, SIGTRAP, SIGABRT, SIGSYS) too when another process sent them
/// (`kill -SEGV`); a fault or abort of jobsup's own stays a crash
/// (`SignalNotifier` tells them apart).
///
/// A signal the caller ignored stays ignored, by jobsup and by init, and
/// init starts with the signals the caller blocked still blocked: so
/// `nohup jobsup run -- …` keeps its payload alive through a hangup, as
/// `nohup` alone would. `--reset-signals` gives init a clean slate instead.
struct SignalPolicy: Equatable {
    /// What jobsup catches (and so unblocks for itself).
    var caught: [Int32]
    /// Leave the signals in `caught` that are ignored when the handlers are
    /// installed ignored (false with --reset-signals).
    var keepIgnored = true
    /// Rewrites applied to a caught signal before it is acted on; 0 drops it.
    var rewrites: [Int32: Int32] = [:]
    /// The mask init starts with: the caller's, or none with --reset-signals.
    var initBlocked: Set<Int32>

    /// What a caught signal, after its rewrite, makes jobsup do.
    enum Action: Equatable {
        /// Freeze the job and stop jobsup (SIGTSTP, SIGTTIN, SIGTTOU).
        case stopJob
        /// Thaw the job, then pass SIGCONT on.
        case resumeJob
        case forward(Int32)
        case drop
    }

    /// Signals that stop the whole job rather than being passed on.
    static let jobControl: Set<Int32> = [SIGTSTP, SIGTTIN, SIGTTOU]

    /// Signals about jobsup's own state, never caught: SIGCHLD, which the
    /// library's reaper handles.
    static let ownState: Set<Int32> = [SIGCHLD]

    /// Every signal jobsup may catch: 1–31 but SIGKILL, SIGSTOP and
    /// `ownState`, and the real-time signals glibc leaves to programs.
    static let catchable: [Int32] = {
        let standard = (1...31).map(Int32.init).filter {
            $0 != SIGKILL && $0 != SIGSTOP && !ownState.contains($0)
        }
        let realtime = Array(__libc_current_sigrtmin()...__libc_current_sigrtmax())
        return standard + realtime
    }()

    /// The policy for this process as it was started: `reset` (the
    /// `--reset-signals` flag) gives every signal its default action and
    /// init an empty mask; otherwise ignored signals stay ignored and the
    /// caller's mask is passed on.
    /// `alwaysCaught` (the parent-death signal) is caught even if ignored.
    static func current(reset: Bool, rewrites: [Int32: Int32], alwaysCaught: [Int32]) -> SignalPolicy {
        var blocked = sigset_t()
        pthread_sigmask(SIG_BLOCK, nil, &blocked)
        // What is ignored is only asked here, for the rare cases; the
        // handlers' installation keeps the rest ignored (keepIgnored).
        let reverted = reset ? (1...Int32(64)).filter { $0 != SIGKILL && $0 != SIGSTOP } : alwaysCaught
        for signal in reverted where jobshim_signal_is_ignored(signal) == 1 {
            Glibc.signal(signal, SIG_DFL)
        }
        let initBlocked = reset ? [] : Set((1...64).map(Int32.init).filter { sigismember(&blocked, $0) == 1 })
        return SignalPolicy(caught: catchable, keepIgnored: !reset, rewrites: rewrites, initBlocked: initBlocked)
    }

    /// Unblocks what jobsup catches, on this thread (the one that runs the
    /// event loop; threads made later inherit its mask), so that a signal
    /// the caller blocked still reaches jobsup to be passed on. (One that
    /// stays ignored is discarded whether blocked or not.)
    func unblockCaught() {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in caught { sigaddset(&set, signal) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    func action(for received: Int32) -> Action {
        let signal = rewrites[received] ?? received
        if signal == 0 { return .drop }
        if Self.jobControl.contains(signal) { return .stopJob }
        if signal == SIGCONT { return .resumeJob }
        return .forward(signal)
    }
}

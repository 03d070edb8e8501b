import Glibc
import JobObjects
import Synchronization

/// Job control for a whole job: stop means every process of it.
///
/// A SIGTSTP, SIGTTIN or SIGTTOU sent to jobsup, or init stopped by ^Z at
/// the terminal jobsup handed it, freezes the job (`cgroup.freeze`), takes
/// the terminal back and stops jobsup, so that the shell sees its job
/// stopped. The SIGCONT of `fg`, `bg` or `kill -CONT` thaws the job, gives
/// init the terminal again if jobsup holds it (after `fg`, not `bg`),
/// continues init's process group and passes SIGCONT on.
final class JobControl: Sendable {
    private let job: any ProcessContainer
    private let initProcess: ProcessHandle
    private let terminal: TerminalForeground?
    private let forward: @Sendable (Int32) -> Void
    /// Where the steps run: the thread of jobsup's event loop. Taken when
    /// made, inside jobsup's task; signals arrive outside any task.
    private let executor = CallingThreadExecutor.current
    /// Steps run one after another, so that a SIGCONT arriving while the job
    /// is being frozen thaws it once the freeze is done.
    private let last = Mutex<Task<Void, Never>?>(nil)
    private let frozenByStop = Mutex(false)

    init(
        job: any ProcessContainer, initProcess: ProcessHandle, terminal: TerminalForeground?,
        forward: @escaping @Sendable (Int32) -> Void
    ) {
        self.job = job
        self.initProcess = initProcess
        self.terminal = terminal
        self.forward = forward
    }

    /// Freezes the job and stops jobsup.
    func stop() {
        enqueue { [self] in
            // Once init has exited the job is being ended; a stop would only
            // hold that up.
            guard initProcess.exitStatus == nil, (try? await job.freeze()) != nil else { return }
            frozenByStop.withLock { $0 = true }
            terminal?.restore()
            // SIGSTOP, not SIGTSTP: jobsup catches the latter, and the kernel
            // discards it in an orphaned process group.
            kill(getpid(), SIGSTOP)
        }
    }

    /// Thaws the job (if a stop froze it) and passes SIGCONT on.
    func resume() {
        enqueue { [self] in
            let wasFrozen = frozenByStop.withLock { frozen in
                defer { frozen = false }
                return frozen
            }
            if wasFrozen {
                if initProcess.exitStatus == nil {
                    if let terminal, terminal.jobsupIsForeground {
                        terminal.handOver(to: initProcess.pid)
                    } else if terminal != nil {
                        _ = kill(-initProcess.pid, SIGCONT)
                    }
                }
                try? await job.thaw()
            }
            forward(SIGCONT)
        }
    }

    /// Follows init's stops at the terminal: ^Z stops init's process group
    /// (the terminal's foreground), not jobsup, so jobsup hears of it as
    /// init's parent and stops the rest of the job with it.
    func followTerminalStops(with reaper: ChildSubreaper) {
        guard terminal != nil else { return }
        reaper.onStop(of: initProcess) { [self] signal in
            if SignalPolicy.jobControl.contains(signal) { stop() }
        }
    }

    private func enqueue(_ step: @escaping @Sendable () async -> Void) {
        last.withLock { last in
            let previous = last
            last = Task(executorPreference: executor) {
                await previous?.value
                await step()
            }
        }
    }
}

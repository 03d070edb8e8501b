import CJobShim
import Glibc
import JobObjects

/// The init duties of `jobsup run` and `jobsup exec`: subreaper, signal
/// forwarding, terminal hand-over, the event stream, and the end of the job
/// when init exits.
struct Supervisor {
    struct Settings {
        var grace: Duration = .seconds(5)
        /// Forward signals to every process in the job rather than to init.
        var signalJob = false
        /// Where job events go as lines, if anywhere.
        var events: EventLines?
        /// Read the job's accounting before it is removed (for --stats).
        var accounting = false
        /// What jobsup catches, and init's signal mask.
        var signals: SignalPolicy
        /// Init statuses (as the shell reports them) jobsup exits 0 for.
        var successStatuses: Set<Int32> = []
        /// `--parent-death-signal`, with the parent jobsup had at its start.
        var parentDeathSignal: (signal: Int32, parent: pid_t)?

        /// Has the kernel send the parent-death signal when jobsup's parent
        /// dies; if it died already (jobsup has been re-parented since its
        /// start), the signal is handled now.
        func armParentDeathSignal(_ forwarder: SignalForwarder) {
            guard let (signal, parent) = parentDeathSignal else { return }
            _ = jobshim_set_parent_death_signal(signal)
            if getppid() != parent { forwarder.receive(signal) }
        }
    }

    struct Outcome {
        var initStatus: ExitStatus
        var accounting: JobAccounting?
        var orphansReaped: Int
    }

    /// Runs `options` as the init of `job` and ends the job when init exits:
    /// SIGTERM to what is left, `grace`, then `close()` kills the rest and
    /// removes the job. On a spawn failure the job is closed and the error thrown.
    static func run(_ options: SpawnOptions, in job: any ProcessContainer, settings: Settings) async throws(JobObjectError) -> Outcome {
        // Events and accounting come from a cgroup; a job without one has neither.
        let cgroupJob = job as? JobObject
        let reaper: ChildSubreaper
        let forwarder: SignalForwarder
        let initProcess: ProcessHandle
        var events: EventFollower?
        let terminal = TerminalForeground.ifInteractive()
        do {
            reaper = try ChildSubreaper.enable()
            forwarder = try SignalForwarder(settings.signals)
            settings.armParentDeathSignal(forwarder)
            // Subscribe before the spawn so the stream starts with init.
            if let lines = settings.events, let cgroupJob { events = EventFollower(cgroupJob.events, into: lines) }
            var options = options
            // A group of its own, so that a signal to the caller's group
            // reaches init once, through jobsup, not twice.
            options.processGroup = .newProcessGroup
            options.blockedSignals = settings.signals.initBlocked
            initProcess = try job.spawn(options)
        } catch {
            try? await job.close()
            await events?.finished()
            throw error
        }
        terminal?.handOver(to: initProcess.pid)
        route(
            forwarder, policy: settings.signals, initProcess: initProcess, job: job, wholeJob: settings.signalJob,
            terminal: terminal, reaper: reaper)
        let status = await initProcess.wait()
        terminal?.restore()
        _ = try? await job.terminate(GracefulTermination(signal: .terminate, grace: settings.grace), exitCode: 1)
        let accounting = settings.accounting ? try? cgroupJob?.accounting() : nil
        forwarder.stop()
        do {
            try await job.close()
        } catch {
            await events?.finished()
            throw error
        }
        await events?.finished()
        reaper.reapOrphansOfEndedJob()
        return Outcome(initStatus: status, accounting: accounting, orphansReaped: reaper.reapedCount)
    }

    /// From now on each signal `forwarder` catches (first those it held)
    /// does what `policy` says: passed on to init (or the job), dropped, or
    /// stopping and resuming the whole job.
    static func route(
        _ forwarder: SignalForwarder, policy: SignalPolicy, initProcess: ProcessHandle, job: any ProcessContainer,
        wholeJob: Bool, terminal: TerminalForeground?, reaper: ChildSubreaper
    ) {
        let forward = destination(initProcess, job: job, wholeJob: wholeJob)
        let control = JobControl(job: job, initProcess: initProcess, terminal: terminal, forward: forward)
        control.followTerminalStops(with: reaper)
        forwarder.forward { received in
            switch policy.action(for: received) {
            case .forward(let signal): forward(signal)
            case .stopJob: control.stop()
            case .resumeJob: control.resume()
            case .drop: break
            }
        }
    }

    /// Where a forwarded signal goes: to init while it runs, to the whole
    /// job with `wholeJob` or once init has exited.
    static func destination(_ initProcess: ProcessHandle, job: any ProcessContainer, wholeJob: Bool) -> @Sendable (Int32) -> Void {
        { signal in
            if wholeJob || initProcess.exitStatus != nil {
                _ = try? job.signal(Signal(signal))
            } else {
                try? initProcess.signal(Signal(signal))
            }
        }
    }
}

/// Writes every event of a job's stream as lines until the stream ends
/// (when the job is closed, so empty; the library's stream then ends with
/// active-process-zero for a job that ran anything).
final class EventFollower: Sendable {
    private let task: Task<Void, Never>

    init(_ stream: AsyncStream<JobEvent>, into lines: EventLines) {
        task = Task(executorPreference: CallingThreadExecutor.current) {
            for await event in stream { lines.write(event) }
        }
    }

    /// Returns once the stream has ended and every event is written.
    func finished() async { await task.value }
}

import Glibc
import JobObjects

/// The init duties of `jobsup run` and `jobsup exec`: subreaper, signal
/// forwarding, terminal hand-over, the event stream, and the end of the job
/// when init exits.
struct Supervisor {
    /// Signals passed on to init (or, with --signal-job, to the whole job).
    static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH]

    struct Settings {
        var grace: Duration = .seconds(5)
        /// Forward signals to every process in the job rather than to init.
        var signalJob = false
        /// Where job events go as lines, if anywhere.
        var events: EventLines?
        /// Read the job's accounting before it is removed (for --stats).
        var accounting = false
    }

    struct Outcome {
        var initStatus: ExitStatus
        var accounting: JobAccounting?
        var orphansReaped: Int
    }

    /// Runs `options` as the init of `job` and ends the job when init exits:
    /// SIGTERM to what is left, `grace`, then `close()` kills the rest and
    /// removes the job. On a spawn failure the job is closed and the error thrown.
    static func run(_ options: SpawnOptions, in job: JobObject, settings: Settings) async throws(JobObjectError) -> Outcome {
        let reaper: ChildSubreaper
        let forwarder: SignalForwarder
        let initProcess: ProcessHandle
        var events: EventFollower?
        let terminal = TerminalForeground.ifInteractive()
        do {
            reaper = try ChildSubreaper.enable()
            forwarder = try SignalForwarder()
            // Subscribe before the spawn so the stream starts with init.
            if let lines = settings.events { events = EventFollower(job.events, into: lines) }
            var options = options
            if terminal != nil { options.processGroup = .newProcessGroup }
            initProcess = try job.spawn(options)
        } catch {
            try? await job.close()
            await events?.finished()
            throw error
        }
        terminal?.handOver(to: initProcess.pid)
        forwarder.forward(to: destination(initProcess, job: job, wholeJob: settings.signalJob))
        let status = await initProcess.wait()
        terminal?.restore()
        await endProcesses(of: job, grace: settings.grace)
        let accounting = settings.accounting ? try? job.accounting() : nil
        forwarder.stop()
        do {
            try await job.close()
        } catch {
            await events?.finished()
            throw error
        }
        await events?.finished()
        return Outcome(initStatus: status, accounting: accounting, orphansReaped: reaper.reapedCount)
    }


    /// Where a forwarded signal goes: to init while it runs, to the whole
    /// job with `wholeJob` or once init has exited.
    static func destination(_ initProcess: ProcessHandle, job: JobObject, wholeJob: Bool) -> @Sendable (Int32) -> Void {
        { signal in
            if wholeJob || initProcess.exitStatus != nil {
                _ = try? job.signal(signal)
            } else {
                try? initProcess.signal(signal)
            }
        }
    }

    /// SIGTERM to whatever init left behind, then at most `grace` for it to
    /// leave; close() kills what remains.
    static func endProcesses(of job: JobObject, grace: Duration) async {
        guard (try? job.isEmpty) == false else { return }
        _ = try? job.signal(SIGTERM)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await job.waitUntilEmpty() }
            group.addTask { try? await Task.sleep(for: grace) }
            await group.next()
            group.cancelAll()
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

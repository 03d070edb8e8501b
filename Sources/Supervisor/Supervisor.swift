import Glibc
import JobObjects

/// The init duties of `jobsup run`: subreaper, signal forwarding, and the
/// end of the job when init exits.
struct Supervisor {
    /// Signals passed on to init.
    static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH]

    let job: JobObject
    let grace: Duration

    struct Outcome {
        var job: JobObject
        var initStatus: ExitStatus
        var accounting: JobAccounting?
        var orphansReaped: Int
    }

    init(name: String?, cgroupParent: String?, grace: Duration) throws(JobObjectError) {
        job = try JobObject.create(name: name, parent: cgroupParent)
        self.grace = grace
    }

    func run(_ options: SpawnOptions) async throws(JobObjectError) -> Outcome {
        let reaper: ChildSubreaper
        let notifier: SignalNotifier
        let initProcess: ProcessHandle
        do {
            reaper = try ChildSubreaper.enable()
            notifier = try SignalNotifier(Self.forwardedSignals)
            initProcess = try job.spawn(options)
        } catch {
            try? await job.close()
            throw error
        }
        let forwarding = Task {
            for await signal in notifier.signals {
                try? initProcess.signal(signal)
            }
        }
        let status = await initProcess.wait()
        forwarding.cancel()
        try await endJob()
        let accounting = try? job.accounting()
        try await job.close()
        return Outcome(job: job, initStatus: status, accounting: accounting, orphansReaped: reaper.reapedCount)
    }

    /// SIGTERM to whatever init left behind, then the grace period, then the
    /// job is killed by close().
    private func endJob() async throws(JobObjectError) {
        guard try !job.isEmpty else { return }
        _ = try? job.signal(SIGTERM)
        let job = self.job
        let grace = self.grace
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await job.waitUntilEmpty() }
            group.addTask { try? await Task.sleep(for: grace) }
            await group.next()
            group.cancelAll()
        }
    }
}

import ArgumentParser
import Glibc
import JobObjects
import JobObjectsPayload
import SystemPackage

/// What `jobsup run` was asked to do, as given on the command line (read by
/// `RunFlags.parse`).
struct RunRequest: Equatable {
    var name: String?
    var cgroupParent: FilePath?
    var cgroupDriver: CgroupDriver?
    var requireCgroup = false
    var file: String?
    var grace: DurationArgument?
    var signalJob = false
    var events: EventLines.Format?
    var eventsFile: String?
    var stats = false
    var statsFormat: OutputFormat = .human
    var limits = LimitFlags()
    var signals = SignalFlags()
    /// The command and its arguments (after `--`).
    var argv: [String] = []

    /// The checks that need more than one option, and the values' own.
    func validate() throws(ValidationError) {
        if argv.isEmpty && file == nil {
            throw ValidationError("no command given; usage: jobsup run [options] -- COMMAND [ARGS...] (or -f FILE)")
        }
        if file != nil && !limits.rlimit.isEmpty {
            throw ValidationError(
                "--rlimit cannot be combined with -f: a payload's init is started by the spec's runner, which takes no per-process limits")
        }
        if let name { do { _ = try JobName(name) } catch { throw ValidationError(error.message) } }
        _ = try limits.limits()
        _ = try signals.parsed()
    }

    /// Runs the job and exits with init's status (or jobsup's own on failure).
    func execute() async -> Never {
        // Read first: the parent may die at any moment from here on.
        let parent = getppid()
        let limits: JobLimits
        let eventLines: EventLines?
        let signals: SignalFlags.Parsed
        do throws(ValidationError) {
            limits = try self.limits.limits()
            signals = try self.signals.parsed()
            eventLines = try openEvents()
        } catch {
            Diagnostics.write(2, "Error: \(error.message)\n")
            Glibc.exit(SupervisorExit.usage)
        }
        let policy = SignalPolicy.current(
            reset: signals.resetSignals, rewrites: signals.rewrites,
            alwaysCaught: signals.parentDeathSignal.map { [$0] } ?? [])
        var settings = Supervisor.Settings(
            grace: grace?.duration ?? .seconds(5), signalJob: signalJob,
            events: eventLines, accounting: stats, signals: policy)
        settings.parentDeathSignal = signals.parentDeathSignal.map { (signal: $0, parent: parent) }
        settings.successStatuses = signals.successStatuses
        let status: Int32
        if let file {
            status = await runSpec(file, limits: limits, settings: settings)
        } else {
            status = await runCommand(limits: limits, settings: settings)
        }
        JobObject.stopWatchdogIfIdle()
        JobParent.undoSetUp()
        Glibc.exit(status)
    }

    /// What jobsup exits with when init ended with `status`.
    private func exitStatus(of status: ExitStatus, _ settings: Supervisor.Settings) -> Int32 {
        let shell = status.shellStatus
        return settings.successStatuses.contains(shell) ? 0 : shell
    }

    private func runCommand(limits: JobLimits, settings: Supervisor.Settings) async -> Int32 {
        let argv = self.argv
        do {
            let job = try makeJob(limits: limits, trackDescendants: settings.events != nil)
            var settings = settings
            settings.events = settings.events.map { EventLines(job: job.name.value, format: $0.format, fd: $0.fd) }
            let outcome = try await Supervisor.run(SpawnOptions(argv[0], arguments: Array(argv.dropFirst())), in: job, settings: settings)
            if stats {
                let report = StatsReport(
                    job: job.name.value, initStatus: outcome.initStatus,
                    accounting: outcome.accounting, orphansReaped: outcome.orphansReaped)
                Diagnostics.write(2, report.text(statsFormat) + "\n")
            }
            return exitStatus(of: outcome.initStatus, settings)
        } catch {
            Diagnostics.fail(error)
        }
    }

    /// The job: in a cgroup, or — where none can be made for jobsup and
    /// nothing asks for one — held as a child subreaper only, with a
    /// one-line warning that says what is weaker.
    private func makeJob(limits: JobLimits, trackDescendants: Bool) throws(JobObjectError) -> any ProcessContainer {
        do {
            let parent = try Self.prepareParent(cgroupParent, driver: cgroupDriver, leaf: Self.needsControllers(limits))
            Self.prestartWatchdog()
            return try JobObject.create(name: name, parent: parent, limits: limits, trackDescendants: trackDescendants)
        } catch {
            guard !requireCgroup, cgroupParent == nil, ProcessTree.canStandIn(for: error, limits: limits) else { throw error }
            Diagnostics.warn(
                "warning: no cgroup can be made here (\(error.message)); the job is held as a child subreaper only: no limits, accounting or events, and its processes outlive jobsup if jobsup is SIGKILLed (--require-cgroup refuses instead)"
            )
            return try ProcessTree(name: name, resourceLimits: limits.perProcess, reason: error)
        }
    }

    /// Starts the owner-death watchdog ahead of the job, so that its set-up
    /// runs beside the job's. Only once jobsup is in its final cgroup
    /// (after `enterLeaf`): the watchdog starts in its owner's cgroup, and a
    /// process left above the leaf would keep controllers from being enabled.
    /// jobsup has one job: the watchdog may exit as soon as it is closed,
    /// beside the rest of the close, rather than be stopped after it.
    private static func prestartWatchdog() {
        JobObject.prestartWatchdog()
        JobObject.stopWatchdogWhenIdle()
    }

    /// `-f FILE`: the payload spec, with the flags laid over it.
    private func runSpec(_ file: String, limits: JobLimits, settings: Supervisor.Settings) async -> Int32 {
        var spec: PayloadSpec
        do {
            spec = try PayloadSpec.load(path: FilePath(file))
        } catch {
            Diagnostics.fail(error, status: SupervisorExit.usage)
        }
        var extra = limits
        if let name { spec.name = name }
        if !argv.isEmpty {
            spec.command = argv
            spec.args = []
        }
        // What the spec's resources can say goes into the spec; the rest is
        // set on the job just after it started.
        if let v = extra.memoryMax {
            spec.resources.limits.memory = v == ByteCount.unlimited ? "max" : String(v)
            extra.memoryMax = nil
        }
        if let v = extra.memoryMin {
            spec.resources.requests.memory = String(v)
            extra.memoryMin = nil
        }
        if let v = extra.maxProcesses, v != Int.max {
            spec.resources.limits.pids = v
            extra.maxProcesses = nil
        }
        if let q = extra.cpu, q.periodMicroseconds == 100_000, let n = q.cpuCount, let millis = Int(roundingExactly: n * 1000) {
            spec.resources.limits.cpu = "\(millis)m"
            extra.cpu = nil
        }
        var options = Payload.RunOptions()
        options.grace = grace?.duration
        options.followEvents = settings.events != nil
        options.trackDescendants = settings.events != nil
        let terminal = TerminalForeground.ifInteractive()
        options.processGroup = .newProcessGroup
        options.blockedSignals = settings.signals.initBlocked
        do {
            options.cgroupParent = try Self.prepareParent(
                cgroupParent, driver: cgroupDriver, leaf: Self.needsControllers(limits) || spec.resources != PayloadSpec.Resources())
            Self.prestartWatchdog()
            let reaper = try ChildSubreaper.enable()
            let forwarder = try SignalForwarder(settings.signals)
            settings.armParentDeathSignal(forwarder)
            let payload = try await Payload.start(spec, options: options)
            terminal?.handOver(to: payload.initProcess.pid)
            let events = settings.events.flatMap { lines in
                payload.events.map { EventFollower($0, into: EventLines(job: spec.name, format: lines.format, fd: lines.fd)) }
            }
            if extra != JobLimits() {
                do { try payload.job.setLimits(extra) } catch {
                    Diagnostics.warn("error: \(error)")
                    _ = await payload.terminate()
                    await events?.finished()
                    return SupervisorExit.status(for: error)
                }
            }
            Supervisor.route(
                forwarder, policy: settings.signals, initProcess: payload.initProcess, job: payload.job,
                wholeJob: signalJob, terminal: terminal, reaper: reaper)
            let outcome = await payload.wait()
            terminal?.restore()
            forwarder.stop()
            await events?.finished()
            reaper.reapOrphansOfEndedJob()
            for step in outcome.cleanup where step.error != nil { Diagnostics.warn("cleanup: \(step)") }
            if stats {
                let report = StatsReport(
                    job: spec.name, initStatus: outcome.initStatus, accounting: outcome.accounting,
                    orphansReaped: reaper.reapedCount)
                Diagnostics.write(2, report.text(statsFormat) + "\n")
            }
            return exitStatus(of: outcome.initStatus, settings)
        } catch {
            Diagnostics.fail(error)
        }
    }

    /// Puts jobsup in its final cgroup before the watchdog starts, and
    /// returns the job parent to make the job in. Under the systemd driver
    /// jobsup first moves into the scope systemd makes for it; with `leaf`
    /// (the limits need controllers) it then moves into the `supervisor`
    /// leaf beside the job parent, which is returned as a full path,
    /// resolved before the move (a default or relative parent is relative
    /// to jobsup's own cgroup, which the move changes). Otherwise the
    /// library resolves the parent as it makes the job.
    static func prepareParent(_ given: FilePath?, driver: CgroupDriver?, leaf: Bool) throws(JobObjectError) -> FilePath? {
        if !leaf, driver == nil, try CgroupDriverChoice.select(parent: given).driver == .cgroupfs { return given }
        let resolved = try JobParent.resolve(given, driver: driver)
        if leaf { try resolved.moveCallerIntoLeaf() }
        return resolved.path
    }

    /// Whether the limits need a controller (all but the per-process limits
    /// and the CPU time budget, which the handle keeps). Then jobsup moves
    /// itself into the `supervisor` leaf first: cgroup v2 lets a cgroup hold
    /// processes or enable controllers for its children, not both.
    static func needsControllers(_ limits: JobLimits) -> Bool {
        var kernelLimits = limits
        kernelLimits.perProcess = []
        kernelLimits.cpuTimeBudget = nil
        return kernelLimits != JobLimits()
    }

    /// The event sink: stderr, or a file made for it.
    private func openEvents() throws(ValidationError) -> EventLines? {
        guard events != nil || eventsFile != nil else { return nil }
        let format = events ?? .json
        guard let path = eventsFile else { return EventLines(job: "", format: format, fd: 2) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ValidationError("cannot open --events-file \(path): \(String(cString: strerror(errno)))")
        }
        return EventLines(job: "", format: format, fd: fd)
    }
}

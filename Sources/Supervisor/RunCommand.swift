import ArgumentParser
import Glibc
import JobObjects

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command as the init of a new job and supervise it.",
        discussion: """
        jobsup becomes a child subreaper, runs COMMAND inside a new job, forwards \
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to it (to every \
        process of the job with --signal-job) and reaps every orphan; it works as PID 1. \
        When stdin is the terminal, COMMAND gets the terminal's foreground. When COMMAND \
        exits, the processes left in the job get SIGTERM, then SIGKILL once the grace \
        period is over; the job is removed and jobsup exits with COMMAND's status \
        (128+N for signal N). If jobsup itself is killed, even by SIGKILL, the job dies too.

        Limits need their cgroup v2 controller; when they do, jobsup first moves itself \
        into a 'supervisor' leaf cgroup (systemd's delegation convention). Sizes take \
        K, M, G, T (powers of 1024); durations ms, s, m, h.

        -f FILE reads the job from a payload spec (YAML or JSON, see docs/jobsup.md); \
        flags given with it override the file, and a COMMAND after -- replaces its \
        command and args.

        Exit status: COMMAND's; 2 for a bad option or file, 125 when jobsup failed, \
        126 when COMMAND cannot be executed, 127 when it is not found.

        Examples:
          jobsup run -- make -j8
          jobsup run --memory-max 2G --cpus 4 --pids-max 512 -- make -j8
          jobsup run --name nightly --grace 10s --stats -- ./backup.sh
          jobsup run --events json --events-file events.jsonl -- ./server
          jobsup run --rlimit nofile=1024 --cpu-time 30s -- ./untrusted-tool
          jobsup run -f job.yaml --memory-max 1G
        """)

    @Option(help: ArgumentHelp("Name of the job (default: generated). One path component.", valueName: "name"))
    var name: String?

    @Option(name: .customLong("cgroup-parent"),
            help: ArgumentHelp("Cgroup under which the job is created (default: $JOBOBJECTS_CGROUP_PARENT, else 'jobobjects' under jobsup's own cgroup).", valueName: "path"))
    var cgroupParent: String?

    @Option(name: .customShort("f"), help: ArgumentHelp("Read the job from a payload spec file (YAML or JSON).", valueName: "file"))
    var file: String?

    @Option(help: ArgumentHelp("How long processes left after COMMAND exits get between SIGTERM and SIGKILL: 500ms, 5s, 1m (default 5s).", valueName: "duration"))
    var grace: DurationArgument?

    @Flag(name: .customLong("signal-job"), help: "Forward signals to every process in the job, not only to COMMAND.")
    var signalJob = false

    @Option(help: ArgumentHelp("Stream the job's events as lines on stderr: json or human.", valueName: "format"))
    var events: EventLines.Format?

    @Option(name: .customLong("events-file"), help: ArgumentHelp("Write the events to this file instead of stderr (implies --events json unless --events is given).", valueName: "path"))
    var eventsFile: String?

    @Flag(help: "Print the job's accounting on stderr when it ends.")
    var stats = false

    @Option(name: .customLong("stats-format"), help: ArgumentHelp("Format of --stats: human or json.", valueName: "format"))
    var statsFormat: OutputFormat = .human

    @OptionGroup(title: "Limits")
    var limitOptions: LimitOptions

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The command to run, after --.", valueName: "command"))
    var command: [String] = []

    var argv: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        // ArgumentParser passes an unknown option on as the command.
        if command.first == "--help" || command.first == "-h" { throw CleanExit.helpRequest(self) }
        if command.first != "--", let first = command.first, first.hasPrefix("-") {
            throw ValidationError("Unknown option '\(first)' (the command goes after --)")
        }
        if argv.isEmpty && file == nil {
            throw ValidationError("no command given; usage: jobsup run [options] -- COMMAND [ARGS...] (or -f FILE)")
        }
        if file != nil && !limitOptions.rlimit.isEmpty {
            throw ValidationError("--rlimit cannot be combined with -f: a payload's init is started by the spec's runner, which takes no per-process limits")
        }
        if let name { do { _ = try JobName(name) } catch { throw ValidationError(error.message) } }
    }

    func run() async throws {
        let limits = try limitOptions.limits()
        let eventLines = try openEvents()
        let settings = Supervisor.Settings(grace: grace?.duration ?? .seconds(5), signalJob: signalJob, events: eventLines)
        let status: Int32
        if let file {
            status = await runSpec(file, limits: limits, settings: settings)
        } else {
            status = await runCommand(limits: limits, settings: settings)
        }
        JobObject.stopWatchdogIfIdle()
        Glibc.exit(status)
    }

    private func runCommand(limits: JobLimits, settings: Supervisor.Settings) async -> Int32 {
        let argv = self.argv
        do {
            let parent = Self.needsControllers(limits) ? try Self.enterLeaf(parent: cgroupParent) : cgroupParent
            let job = try JobObject.create(name: name, parent: parent, limits: limits)
            var settings = settings
            settings.events = settings.events.map { EventLines(job: job.name.value, format: $0.format, fd: $0.fd) }
            let outcome = try await Supervisor.run(SpawnOptions(argv[0], arguments: Array(argv.dropFirst())), in: job, settings: settings)
            if stats {
                let report = StatsReport(job: job.name.value, initStatus: outcome.initStatus,
                                         accounting: outcome.accounting, orphansReaped: outcome.orphansReaped)
                Diagnostics.write(2, report.text(statsFormat) + "\n")
            }
            return outcome.initStatus.shellStatus
        } catch {
            Diagnostics.fail(error)
        }
    }

    /// `-f FILE`: the payload spec, with the flags laid over it.
    private func runSpec(_ file: String, limits: JobLimits, settings: Supervisor.Settings) async -> Int32 {
        var spec: PayloadSpec
        do {
            spec = try PayloadSpec.load(path: file)
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
        if let v = extra.memoryMax { spec.resources.limits.memory = v == ByteCount.unlimited ? "max" : String(v); extra.memoryMax = nil }
        if let v = extra.memoryMin { spec.resources.requests.memory = String(v); extra.memoryMin = nil }
        if let v = extra.maxProcesses, v != Int.max { spec.resources.limits.pids = v; extra.maxProcesses = nil }
        if let q = extra.cpu, q.periodMicroseconds == 100_000, let n = q.cpuCount {
            spec.resources.limits.cpu = "\(Int((n * 1000).rounded()))m"
            extra.cpu = nil
        }
        var options = Payload.RunOptions(cgroupParent: cgroupParent)
        options.grace = grace?.duration
        let terminal = TerminalForeground.ifInteractive()
        if terminal != nil { options.processGroup = .newProcessGroup }
        do {
            if Self.needsControllers(limits) || spec.resources != PayloadSpec.Resources() {
                options.cgroupParent = try Self.enterLeaf(parent: cgroupParent)
            }
            let reaper = try ChildSubreaper.enable()
            let notifier = try SignalNotifier(Supervisor.forwardedSignals)
            let payload = try await Payload.start(spec, options: options)
            terminal?.handOver(to: payload.initProcess.pid)
            let events = settings.events.map { EventFollower(payload.job.events, into: EventLines(job: spec.name, format: $0.format, fd: $0.fd)) }
            if extra != JobLimits() {
                do { try payload.job.setLimits(extra) } catch {
                    Diagnostics.warn("error: \(error)")
                    _ = await payload.terminate()
                    await events?.finished()
                    return SupervisorExit.status(for: error)
                }
            }
            let forwarding = Supervisor.forward(notifier, to: payload.initProcess, job: payload.job, wholeJob: signalJob)
            let outcome = await payload.wait()
            terminal?.restore()
            forwarding.cancel()
            await events?.finished()
            for step in outcome.cleanup where step.error != nil { Diagnostics.warn("cleanup: \(step)") }
            if stats {
                let report = StatsReport(job: spec.name, initStatus: outcome.initStatus, accounting: outcome.accounting,
                                         orphansReaped: reaper.reapedCount)
                Diagnostics.write(2, report.text(statsFormat) + "\n")
            }
            return outcome.initStatus.shellStatus
        } catch {
            Diagnostics.fail(error)
        }
    }

    /// Moves jobsup into the `supervisor` leaf beside the job parent and
    /// returns the parent as a full path, resolved before the move (a
    /// default or relative parent is relative to jobsup's own cgroup, which
    /// the move changes).
    static func enterLeaf(parent: String?) throws(JobObjectError) -> String {
        let resolved = try JobParent.resolve(parent)
        try resolved.moveCallerIntoLeaf()
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
    private func openEvents() throws -> EventLines? {
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

extension EventLines.Format: ExpressibleByArgument {}

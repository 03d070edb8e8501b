import ArgumentParser
import Glibc
import JobObjects

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command as the init of a new job and supervise it.",
        discussion: """
        jobsup becomes a child subreaper, runs COMMAND inside a new job in a process \
        group of its own, passes on to it every signal it can catch (to every process \
        of the job with --signal-job) and reaps every orphan; it works as PID 1. The \
        fault signals and SIGCHLD are jobsup's own. SIGTSTP, SIGTTIN and SIGTTOU (and \
        ^Z at the terminal) freeze the whole job and stop jobsup; SIGCONT thaws it. \
        Signals ignored when jobsup started stay ignored (nohup works) and blocked ones \
        stay blocked in COMMAND, unless --reset-signals. When stdin is the terminal, \
        COMMAND gets the terminal's foreground. When COMMAND exits, the processes left \
        in the job get SIGTERM, then SIGKILL once the grace period is over; the job is \
        removed and jobsup exits with COMMAND's status (128+N for signal N). If jobsup \
        itself is killed, even by SIGKILL, the job dies too.

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
          jobsup run --rewrite-signal TERM:QUIT --success-exit 143 -- ./server
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

    @OptionGroup(title: "Signals and status")
    var signalOptions: SignalOptions

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
        try request.validate()
    }

    /// The request the flags make.
    var request: RunRequest {
        RunRequest(name: name, cgroupParent: cgroupParent, file: file, grace: grace, signalJob: signalJob,
                   events: events, eventsFile: eventsFile, stats: stats, statsFormat: statsFormat,
                   limits: limitOptions.flags, signals: signalOptions.flags, argv: argv)
    }

    func run() async throws {
        await request.execute()
    }
}

extension EventLines.Format: ExpressibleByArgument {}

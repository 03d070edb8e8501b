import ArgumentParser
import Glibc
import JobObjects

struct RunCommand: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
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

                """ + "\n" + FlagHelp.text(RunFlags.sections))
    }

    /// The options (declared in `RunFlags`), `--` and the command, read
    /// by `RunFlags.parse`: ArgumentParser only routes them here.
    @Argument(
        parsing: .captureForPassthrough,
        help: ArgumentHelp("The options above, then -- and the command to run.", valueName: "options -- command"))
    var arguments: [String] = []

    func validate() throws {
        if arguments.first == "--help" || arguments.first == "-h" { throw CleanExit.helpRequest(self) }
        try request().validate()
    }

    /// The request the command line makes.
    func request() throws(ValidationError) -> RunRequest {
        try RunFlags.parse(arguments[...])
    }

    func run() async throws {
        try await request().execute()
    }
}

extension EventLines.Format: ExpressibleByArgument {}

import ArgumentParser
import Glibc
import JobObjects

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command as the init of a new job and supervise it.",
        discussion: """
        jobsup becomes a child subreaper, runs COMMAND inside a new job, forwards \
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to it and \
        reaps every orphan. When COMMAND exits, the processes left in the job get \
        SIGTERM, then SIGKILL once the grace period is over; the job is removed and \
        jobsup exits with COMMAND's status (128+N for signal N).

        Examples:
          jobsup run -- make -j8
          jobsup run --name nightly --grace 10s --stats -- ./backup.sh
          jobsup run --stats --stats-format json -- python3 train.py
        """)

    @Option(help: ArgumentHelp("Name of the job (default: generated). One path component.", valueName: "name"))
    var name: String?

    @Option(name: .customLong("cgroup-parent"),
            help: ArgumentHelp("Cgroup under which the job is created (default: $JOBOBJECTS_CGROUP_PARENT, else 'jobobjects' under jobsup's own cgroup).", valueName: "path"))
    var cgroupParent: String?

    @Option(help: ArgumentHelp("How long processes left after COMMAND exits get between SIGTERM and SIGKILL: 500ms, 5s, 1m.", valueName: "duration"))
    var grace: DurationArgument = DurationArgument(.seconds(5))

    @Flag(help: "Print the job's accounting on stderr when it ends.")
    var stats = false

    @Option(name: .customLong("stats-format"), help: ArgumentHelp("Format of --stats: human or json.", valueName: "format"))
    var statsFormat: StatsFormat = .human

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The command to run, after --.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        if command.first == "--" { return }
        if command.isEmpty { throw ValidationError("no command given; usage: jobsup run [options] -- COMMAND [ARGS...]") }
    }

    func run() async throws {
        let argv = command.first == "--" ? Array(command.dropFirst()) : command
        guard let executable = argv.first else {
            throw ValidationError("no command given after --; usage: jobsup run [options] -- COMMAND [ARGS...]")
        }
        let status: Int32
        do {
            let supervisor = try Supervisor(name: name, cgroupParent: cgroupParent, grace: grace.duration)
            let outcome = try await supervisor.run(SpawnOptions(executable, arguments: Array(argv.dropFirst())))
            if stats { StatsReport(outcome, format: statsFormat).print() }
            JobObject.stopWatchdogIfIdle()
            status = outcome.initStatus.shellStatus
        } catch let error as JobObjectError {
            Diagnostics.fail(error)
        }
        Glibc.exit(status)
    }
}

enum StatsFormat: String, ExpressibleByArgument, CaseIterable {
    case human, json
}

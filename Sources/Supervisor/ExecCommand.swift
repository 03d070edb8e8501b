import ArgumentParser
import Glibc
import JobObjects

struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Start one more process inside a running job, wait for it, and exit with its status.",
        discussion: """
            COMMAND is born inside the job (clone3 into its cgroup), under its limits, with \
            this shell's stdin, stdout and stderr, in a process group of its own. jobsup \
            passes on to it every signal it can catch (all but SIGCHLD and the fault \
            signals; signals ignored when jobsup started stay ignored, blocked ones stay \
            blocked in COMMAND) and exits with its status (128+N \
            for signal N); 125 when the job cannot be opened, 126 when COMMAND cannot be \
            executed, 127 when it is not found. The job's own jobsup ends COMMAND with the \
            job.

            Examples:
              jobsup exec web -- sh -c 'cat /proc/self/cgroup'
              jobsup exec build -- gdb -p 1234
            """)

    @OptionGroup var target: JobTarget

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The command to run, after --.", valueName: "command"))
    var command: [String] = []

    var argv: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        if command.first == "--help" || command.first == "-h" { throw CleanExit.helpRequest(self) }
        if command.first != "--", let first = command.first, first.hasPrefix("-") {
            throw ValidationError("Unknown option '\(first)' (the command goes after --)")
        }
        if argv.isEmpty { throw ValidationError("no command given; usage: jobsup exec NAME -- COMMAND [ARGS...]") }
    }

    func run() async throws {
        let argv = self.argv
        let status: Int32
        do {
            let job = try JobObject.open(name: target.name, parent: target.cgroupParent.path, driver: target.cgroupParent.driver)
            let policy = SignalPolicy.current(reset: false, rewrites: [:], alwaysCaught: [])
            let forwarder = try SignalForwarder(policy)
            let terminal = TerminalForeground.ifInteractive()
            var options = SpawnOptions(argv[0], arguments: Array(argv.dropFirst()))
            options.processGroup = .newProcessGroup
            options.blockedSignals = policy.initBlocked
            let process = try job.spawn(options)
            terminal?.handOver(to: process.pid)
            forwarder.forward { try? process.signal(Signal($0)) }
            status = await process.wait().shellStatus
            terminal?.restore()
            forwarder.stop()
        } catch {
            Diagnostics.fail(error)
        }
        Glibc.exit(status)
    }
}

import ArgumentParser
import JobObjects

struct SignalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signal",
        abstract: "Send a signal to every process in a job.",
        discussion: """
            SIGNAL is a name (TERM, SIGTERM, hup) or a number (15). Each process is held \
            by a pidfd and checked to be in the job before it is signalled. Prints how many \
            processes got it.

            Examples:
              jobsup signal web HUP
              jobsup signal web 10
            """)

    @OptionGroup var target: JobTarget

    @Argument(help: ArgumentHelp("The signal, by name or number.", valueName: "signal"))
    var signal: SignalArgument

    func run() async throws {
        let job = target.open()
        await management { () async throws(JobObjectError) in
            let count = try job.signal(Signal(signal.number))
            Diagnostics.output("\(signalName(signal.number)) sent to \(count) process(es) of job \(job.name)")
        }
    }
}

struct KillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "Kill every process in a job and wait until it is empty.",
        discussion: """
            Writes cgroup.kill (freeze, kill each, thaw on kernels before 5.14). The jobsup \
            that runs the job then sees its init killed and removes the job; a job whose \
            jobsup is gone (killed with its watchdog) is removed by this command, with its \
            parent when that is the default one and now empty.

            Example:
              jobsup kill web
            """)

    @OptionGroup var target: JobTarget

    func run() async throws {
        let job = target.open()
        await management { () async throws(JobObjectError) in
            try await job.terminate(exitCode: 137)
            job.reclaimIfAbandoned()
        }
    }
}

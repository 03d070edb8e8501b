import ArgumentParser
import JobObjects

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print a job's accounting: CPU, memory, IO, page faults, processes, limit hits.",
        discussion: """
            Fields whose controller is not enabled for the job are left out (human) or \
            null (json). The JSON schema is in docs/jobsup.md.

            Examples:
              jobsup stats build
              jobsup stats build --format json | jq .memory_peak_bytes
            """)

    @OptionGroup var target: JobTarget

    @Option(help: ArgumentHelp("human or json.", valueName: "format"))
    var format: OutputFormat = .human

    func run() async throws {
        let job = target.open()
        await management { () async throws(JobObjectError) in
            let report = StatsReport(job: job.name.value, accounting: try job.accounting())
            Diagnostics.output(report.text(format))
        }
    }
}

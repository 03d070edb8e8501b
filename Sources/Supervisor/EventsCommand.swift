import ArgumentParser
import JobObjects

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Follow a job's events until it has no process left.",
        discussion: """
        The first line is 'subscribed' with the job's state and counters so far; then \
        one line per event (memory.max reached, OOM kill, pids.max refusal, frozen, \
        thawed, active-process-zero, …), ending after active_process_zero. Process \
        starts and exits are seen only by the jobsup that runs the job (use \
        jobsup run --events). The JSON schema is in docs/jobsup.md.

        Examples:
          jobsup events build
          jobsup events build --format human
        """)

    @OptionGroup var target: JobTarget

    @Option(help: ArgumentHelp("json (one object per line) or human.", valueName: "format"))
    var format: EventLines.Format = .json

    func run() async throws {
        let job = target.open()
        let lines = EventLines(job: job.name.value, format: format, fd: 1)
        for await event in job.events {
            lines.write(event)
            if case .subscribed(let counters) = event, !counters.populated { break }
            if event == .activeProcessZero { break }
        }
    }
}

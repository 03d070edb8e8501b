import ArgumentParser
import JobObjects
import Synchronization

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
        let written = Latch()  // set once the last line is written
        let stream = job.events
        // The stream is the record; waiting on cgroup.events ends the follow
        // when the job is empty or gone (its owner removes an emptied job's
        // cgroup, which reads as empty) even if the stream saw no last change.
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in stream {
                    let last: Bool = written.state.withLock { done in
                        if done { return true }
                        lines.write(event)
                        if case .subscribed(let counters) = event, !counters.populated { done = true }
                        if event == .activeProcessZero { done = true }
                        return done
                    }
                    if last { return }
                }
            }
            group.addTask {
                try? await job.waitUntilEmpty()
                written.state.withLock { done in
                    if !done { lines.write(.activeProcessZero) }
                    done = true
                }
            }
            await group.next()
            group.cancelAll()
        }
    }
}

/// A flag shared by the follow's two tasks.
final class Latch: Sendable {
    let state = Mutex(false)
}

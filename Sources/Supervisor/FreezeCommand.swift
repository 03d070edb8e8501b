import ArgumentParser
import JobObjects

struct FreezeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "freeze",
        abstract: "Freeze every process in a job (cgroup.freeze); returns once it is frozen.",
        discussion: """
            Frozen processes use no CPU and cannot be woken by signals, except SIGKILL, \
            until thawed.

            Example:
              jobsup freeze build && sleep 60 && jobsup thaw build
            """)

    @OptionGroup var target: JobTarget

    func run() async throws {
        let job = target.open()
        await management { () async throws(JobObjectError) in try await job.freeze() }
    }
}

struct ThawCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thaw",
        abstract: "Thaw a frozen job; returns once it runs again.",
        discussion: """
            Example:
              jobsup thaw build
            """)

    @OptionGroup var target: JobTarget

    func run() async throws {
        let job = target.open()
        await management { () async throws(JobObjectError) in try await job.thaw() }
    }
}

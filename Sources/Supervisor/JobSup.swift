import ArgumentParser

/// `jobsup`: runs payloads as Windows-style job objects on cgroup v2.
@main
struct JobSup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobsup",
        abstract: "Run programs as job objects: grouped, limited, accounted for, and gone when their time is up.",
        discussion: """
        jobsup puts a payload and every process it starts into one cgroup v2 job. \
        No process can leave the job by forking or setsid; when the payload's init \
        exits, the rest get SIGTERM, then SIGKILL after a grace period, and the job \
        is removed. If jobsup itself dies, even by SIGKILL, the job dies with it.

        Exit status: the payload's (128+N when signal N ended it); 125 when jobsup \
        itself failed, 126 when the command cannot be executed, 127 when it is not found.
        """,
        subcommands: [RunCommand.self, InfoCommand.self],
        defaultSubcommand: nil)
}

import ArgumentParser
import JobObjects
import JobObjectsPayload

struct ReclaimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reclaim",
        abstract: "End the jobs and payloads whose supervisor died without ending them.",
        discussion: """
            A jobsup (or any program using JobObjects) killed together with its \\
            watchdog leaves its jobs running. Each job records its owner on its cgroup \\
            (the user.jobobjects.owner attribute); this command kills and removes every \\
            job under the job parent whose owner is gone, and releases the storage, mounts \\
            and ephemeral users of payloads whose owner and janitor are both gone. Jobs \\
            whose owner lives, and jobs without a record (detached ones), are left alone. \\
            Prints one line per job or payload reclaimed. The next JobObjects program to \\
            make a job under the same parent does the same for that parent.

            Examples:
              jobsup reclaim
              jobsup reclaim --cgroup-parent /sys/fs/cgroup/ci.slice/jobobjects
            """)

    @OptionGroup var cgroupParent: CgroupParentOption

    func run() async throws {
        await management { () async throws(JobObjectError) in
            for parent in try JobParent.lookup(cgroupParent.path, driver: cgroupParent.driver) {
                for name in parent.reclaimAbandonedJobs() { Diagnostics.output("reclaimed job \(name)") }
            }
            for name in Payload.reclaimStale() { Diagnostics.output("reclaimed payload \(name)") }
        }
    }
}

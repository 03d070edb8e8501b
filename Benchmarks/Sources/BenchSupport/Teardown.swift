import Glibc
import JobObjects

/// Tearing down a job of N sleeping processes until its cgroup is gone.
public enum Teardown {
    /// A job filled with `processes` sleepers, ready to be closed.
    public struct FilledJob {
        public let job: JobObject
        public let members: [ProcessHandle]
    }

    public static func fill(processes: Int) async throws -> FilledJob {
        let job = try JobObject.create(name: Workloads.uniqueJobName("bench-teardown"))
        var options = SpawnOptions(Workloads.sleepProgram, arguments: ["3600"])
        options.standardInput = .null
        var members: [ProcessHandle] = []
        members.reserveCapacity(processes)
        do {
            for _ in 0..<processes { members.append(try job.spawn(options)) }
        } catch {
            try? await job.close()
            throw error
        }
        return FilledJob(job: job, members: members)
    }

    /// `JobObject.close()` (cgroup.kill, wait for the members, rmdir),
    /// timed; then, untimed, waits until every member has been reaped so
    /// the next measurement starts from a quiet monitor thread.
    public static func close(_ filled: FilledJob) async throws -> UInt64 {
        let start = MonotonicClock.now()
        try await filled.job.close()
        let elapsed = MonotonicClock.now() - start
        guard access(filled.job.path.string, F_OK) != 0 else { throw BenchError("\(filled.job.path) still exists after close()") }
        for member in filled.members { _ = await member.wait() }
        return elapsed
    }

    /// The floor, `floor-cgroup-kill` (one teardown of a fresh cgroup):
    /// waiting on `cgroup.events`, or with `waitingForChildren` on the
    /// members' exits, as a supervisor that spawned them can.
    public static func floor(processes: Int, parent: String, waitingForChildren: Bool = false) throws -> UInt64 {
        let arguments = (waitingForChildren ? ["--wait-children"] : []) + [parent, String(processes), "1"]
        return try HelperPrograms.samples(HelperPrograms.cgroupKillFloor, arguments)[0]
    }
}

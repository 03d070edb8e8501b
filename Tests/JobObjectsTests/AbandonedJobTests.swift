import Foundation
import Glibc
@testable import JobObjects
import SystemPackage
import Testing

/// A job whose owner and watchdog were both killed is found and ended: by
/// `jobsup reclaim`, by `jobsup kill`, and by the next process that makes a
/// job under the same parent. Each kill-on-close job records its owner on its
/// cgroup (`user.jobobjects.owner`).
@Suite("abandoned jobs are found and ended", .serialized)
struct AbandonedJobTests {
    enum Finder: String, CaseIterable, Sendable { case reclaimCommand, killCommand, nextJobInTheParent }

    @Test(arguments: Finder.allCases)
    func aJobWhoseOwnerAndWatchdogWereKilledIsEnded(_ finder: Finder) async throws {
        // jobsup in a job of ours, making its job in the default parent
        // there, so every step stays inside the test's job.
        try await withJobObject(name: uniqueJobName()) { outer async throws in
            let name = uniqueJobName()
            let owner = try spawnPiped(outer, [jobsupPath, "run", "--name", name, "--", "sh", "-c", "sleep 1000 & echo ready; wait"])
            _ = await PipeReader.readUntil("ready", from: owner.standardOutput!)
            let parent = outer.path.string + "/jobobjects"
            let job = try JobObject.open(name: name, parent: FilePath(parent))
            let members = try job.processIDs().map(watch)
            #expect(members.count == 2)
            #expect(JobOwnerRecord.read(job.cgroupPath).map(\.owner.pid) == [owner.pid])

            // Stopped first, the owner cannot replace its watchdog (as it
            // would at once) before it is killed too.
            try owner.signal(.stop)
            // Found once it has its name: one that is renaming itself or
            // exec'ing into its own image right now briefly has another.
            var found: pid_t?
            #expect(
                await eventually {
                    found = childProcesses(of: owner.pid).first { commandName($0) == "jobobjects-wd" }
                    return found != nil
                })
            let watchdog = try #require(found)
            #expect(kill(watchdog, SIGKILL) == 0)
            try owner.signal(.kill)
            #expect(await owner.wait() == .signaled(signal: SIGKILL, coreDumped: false))
            try owner.standardOutput!.close()
            // Nothing else ends it: the job is abandoned, and still running.
            #expect(job.isAbandoned)
            #expect(try job.processIDs().count == 2)
            let listed = try await Jobsup.run(["list", "--format", "json"], in: outer)
            #expect(listed.out.contains("{\"name\":\"\(name)\",\"state\":\"abandoned\""), "\(listed.out)")

            switch finder {
            case .reclaimCommand:
                let result = try await Jobsup.run(["reclaim"], in: outer)
                #expect(result.status == .exited(code: 0), "\(result.err)")
                #expect(result.out == "reclaimed job \(name)\n", "\(result.out)")
            case .killCommand:
                let result = try await Jobsup.run(["kill", name], in: outer)
                #expect(result.status == .exited(code: 0), "\(result.err)")
            case .nextJobInTheParent:
                let result = try await Jobsup.run(["run", "--", "true"], in: outer)
                #expect(result.status == .exited(code: 0), "\(result.err)")
            }
            expectNothingLeft(path: job.path.string, processes: members)
            // The default parent went with its last job.
            #expect(access(parent, F_OK) != 0)
        }
    }

    /// Only a job whose recorded owner is certainly gone is taken: not a
    /// live owner's, not one without a record, not one recorded in another
    /// pid namespace (whose pids mean nothing here).
    @Test func onlyAJobWhoseOwnerIsGoneIsReclaimed() async throws {
        let parent = try JobParent.resolve(nil)
        let live = try JobObject.create(name: uniqueJobName())
        #expect(JobOwnerRecord.read(live.cgroupPath) == [try #require(JobOwnerRecord.current)])
        let unrecorded = try JobObject.create(name: uniqueJobName(), killOnClose: false)
        #expect(JobOwnerRecord.read(unrecorded.cgroupPath).isEmpty)
        let current = try #require(JobOwnerRecord.current)
        // A pid past pid_max, so that no process has it.
        let nobody = ProcessIdentity(pid: 4_194_305, startTime: current.owner.startTime)
        let dead = try JobObject.create(name: uniqueJobName(), killOnClose: false)
        let sleeper = try dead.spawn("sleep", "1000")
        #expect(JobOwnerRecord.write([JobOwnerRecord(owner: nobody, pidNamespace: current.pidNamespace)], to: dead.directory.fd))
        let elsewhere = try JobObject.create(name: uniqueJobName(), killOnClose: false)
        #expect(JobOwnerRecord.write([JobOwnerRecord(owner: nobody, pidNamespace: current.pidNamespace &+ 1)], to: elsewhere.directory.fd))

        #expect(parent.reclaimAbandonedJobs() == [dead.name.value])
        #expect(await sleeper.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        expectNothingLeft(path: dead.path.string, processes: [sleeper])
        for job in [live, unrecorded, elsewhere] {
            #expect(access(job.path.string, F_OK) == 0)
            #expect(!job.isAbandoned)
        }
        try await live.close()
        for job in [unrecorded, elsewhere] {
            #expect(rmdir(job.path.string) == 0)
        }
    }

    /// A detached job is nobody's to kill on close: its holder's line goes,
    /// and those of the other processes that hold it to kill it on close stay.
    @Test func detachingClearsOnlyItsOwnRecord() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        #expect(JobOwnerRecord.read(job.cgroupPath).count == 1)
        job.detach()
        #expect(JobOwnerRecord.read(job.cgroupPath).isEmpty)

        let init1 = try #require(ProcessIdentity(pid: 1))
        let foreign = JobOwnerRecord(owner: init1, pidNamespace: try #require(JobOwnerRecord.current).pidNamespace)
        #expect(JobOwnerRecord.write([foreign], to: job.directory.fd))
        let other = try JobObject.open(name: job.name.value, killOnClose: true)
        #expect(JobOwnerRecord.read(job.cgroupPath) == [foreign, try #require(JobOwnerRecord.current)])
        other.detach()
        #expect(JobOwnerRecord.read(job.cgroupPath) == [foreign])
        #expect(rmdir(job.path.string) == 0)
    }

    /// Opening a job to kill it on close adds a holder rather than replacing
    /// the creator: when the creator dies with its watchdog while the other
    /// holder lives, the job is still known to be abandoned.
    @Test func everyHolderIsRecordedAndAnyGoneOneAbandonsTheJob() async throws {
        let job = try JobObject.create(name: uniqueJobName(), killOnClose: false)
        let current = try #require(JobOwnerRecord.current)
        let creatorGone = JobOwnerRecord(owner: ProcessIdentity(pid: 4_194_305, startTime: 1), pidNamespace: current.pidNamespace)
        #expect(JobOwnerRecord.write([creatorGone], to: job.directory.fd))
        let holder = try JobObject.open(name: job.name.value, killOnClose: true)
        #expect(JobOwnerRecord.read(job.cgroupPath) == [creatorGone, current])
        #expect(holder.isAbandoned)
        #expect(holder.reclaimIfAbandoned())
        #expect(access(job.path.string, F_OK) != 0)
    }
}

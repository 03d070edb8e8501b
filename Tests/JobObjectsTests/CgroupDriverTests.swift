import CJobShim
import Glibc
import Testing

@testable import JobObjects

/// The cgroup driver choice where systemd does not manage the machine (the
/// host and VM tiers); scripts/test-systemd-tier covers the systemd driver
/// itself, with systemd as PID 1.
@Suite(
    "cgroup driver: which one, and why",
    .enabled(if: access("/run/systemd/system", F_OK) != 0, "systemd manages this machine; the systemd tier covers it"))
struct CgroupDriverTests {
    @Test func withoutSystemdTheDriverIsCgroupfsAndSaysWhy() throws {
        let choice = try CgroupDriverChoice.select()
        #expect(choice.driver == .cgroupfs)
        // The VM tier gives the tests their parent through the environment.
        let parentGiven = getenv(JobParent.environmentVariable) != nil
        #expect(choice.reason == (parentGiven ? "a job parent was given" : "systemd does not manage this machine"))
        #expect(try CgroupDriverChoice.select(parent: "jobs").reason == "a job parent was given")
        #expect(try CgroupDriverChoice.select(forced: .cgroupfs).reason == "asked for")
    }

    @Test func askingForSystemdWithoutItIsAClearError() {
        let error = #expect(throws: JobObjectError.self) { try JobParent.resolve(driver: .systemd) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("systemd does not manage this machine") == true)
        #expect(error?.message.contains("use the cgroupfs driver") == true)
        #expect(SystemdScope.enteredUnit == nil)
    }

    @Test(arguments: ["", "Systemd", "docker", "cgroupfs ", String(repeating: "x", count: 100_000)])
    func unknownDriverNamesAreRefusedNamingTheChoices(_ text: String) {
        let error = #expect(throws: JobObjectError.self) { try CgroupDriver(parsing: text) }
        #expect(error?.message.contains("use cgroupfs") == true && error?.message.contains("or systemd") == true)
        #expect((error?.message.count ?? 0) < 400)
    }

    /// systemd marks a delegated unit's cgroup with `trusted.delegate` or
    /// `user.delegate`; a cgroup without the mark is not delegated to root
    /// just because root may write to it.
    @Test func systemdsDelegationMarkIsRead() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            #expect(geteuid() != 0 || !CgroupDriverChoice.isDelegated(job.path.string))
            #expect(setxattr(job.path.string, "user.delegate", "1", 1, 0) == 0, "errno \(errno)")
            #expect(CgroupDriverChoice.isDelegated(job.path.string))
        }
    }

    @Test func jobsupRunAndInfoSayWhichDriver() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let info = try await Jobsup.run(["info"], in: job)
            #expect(info.out.contains("cgroup driver:  cgroupfs (systemd does not manage this machine)"), "\(info.out)")
            let forced = try await Jobsup.run(["info"], in: job) {
                $0.environment = .inheritUpdating([CgroupDriver.environmentVariable: "systemd"])
            }
            #expect(forced.code == 2)
            #expect(forced.err.contains("JOBOBJECTS_CGROUP_DRIVER=systemd"), "\(forced.err)")
            let run = try await Jobsup.run(["run", "--cgroup-driver", "systemd", "--", "true"], in: job)
            #expect(run.code == 2, "\(run.err)")
            #expect(run.err.contains("systemd does not manage this machine"), "\(run.err)")
            let bad = try await Jobsup.run(["list", "--cgroup-driver", "nope"], in: job)
            #expect(bad.code == 2)
            #expect(bad.err.contains("nope"), "\(bad.err)")
        }
    }
}

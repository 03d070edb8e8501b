import Glibc
import Testing

@testable import JobObjects

/// Where no cgroup can be made — a user without delegation, a read-only
/// cgroup2 mount — jobsup holds the job as a child subreaper only
/// (`ProcessTree`), says so, and still finds and kills a double-forked
/// daemon. Each jobsup runs in a job of the test's, which catches anything
/// it would leave.
@Suite("no writable cgroup: the subreaper-only fallback")
struct SubreaperFallbackTests {
    /// Starts a daemon (setsid, its parent exits at once) that ignores
    /// SIGTERM and prints its pid, then exits.
    static let daemonizing = ["sh", "-c", "setsid sh -c 'trap \"\" TERM; sleep 1000 & echo daemon $!'; sleep 0.2"]

    static func daemonPID(in output: String) -> pid_t? {
        output.split(separator: "\n").first { $0.hasPrefix("daemon ") }.flatMap { pid_t($0.dropFirst(7)) }
    }

    @Test func aUserWithoutDelegationGetsTheFallbackAndItsDaemonIsKilled() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let jobsup = try await ExecutableCopy(of: jobsupPath, in: job)
            let result = try await Jobsup.run(["run", "--grace", "100ms", "--"] + Self.daemonizing, in: job) {
                $0.executable = jobsup.path
                $0.argument0 = jobsup.path
                $0.credentials = .init(uid: 65534, gid: 65534)
            }
            #expect(result.code == 0, "\(result.err)")
            #expect(result.err.contains("held as a child subreaper only") && result.err.contains("permission denied"), "\(result.err)")
            #expect(result.err.split(separator: "\n").filter { $0.contains("warning") }.count == 1)
            let daemon = try #require(Self.daemonPID(in: result.out), "\(result.out)")
            // Gone, not even a zombie: jobsup killed it and reaped it.
            #expect(kill(daemon, 0) != 0 && errno == ESRCH, "daemon \(daemon) outlived jobsup")
            #expect(try job.processIDs().isEmpty)

            let info = try await Jobsup.run(["info"], in: job) {
                $0.executable = jobsup.path
                $0.argument0 = jobsup.path
                $0.credentials = .init(uid: 65534, gid: 65534)
            }
            #expect(info.out.contains("jobs held by:   a child subreaper only (this user may not create cgroups"), "\(info.out)")

            let refused = try await Jobsup.run(["run", "--require-cgroup", "--", "true"], in: job) {
                $0.executable = jobsup.path
                $0.argument0 = jobsup.path
                $0.credentials = .init(uid: 65534, gid: 65534)
            }
            #expect(refused.code == 125 && refused.err.contains("permission denied"), "\(refused.err)")
            let limited = try await Jobsup.run(["run", "--pids-max", "10", "--", "true"], in: job) {
                $0.executable = jobsup.path
                $0.argument0 = jobsup.path
                $0.credentials = .init(uid: 65534, gid: 65534)
            }
            #expect(limited.code != 0 && !limited.err.contains("subreaper"), "a limit needs a cgroup: \(limited.err)")
        }
    }

    @Test func aReadOnlyCgroupMountGetsTheFallback() async throws {
        let mount = try CgroupHierarchy.discover().mountPoint.string
        try await withJobObject(name: uniqueJobName()) { job async throws in
            // A mount namespace of its own, where the cgroup2 mount is read-only.
            let script = "mount -o remount,bind,ro \"$0\" && exec \"$@\""
            let result = try await Jobsup.run([], in: job) {
                $0.executable = "unshare"
                $0.argument0 = "unshare"
                $0.arguments = ["-m", "sh", "-c", script, mount, jobsupPath, "run", "--grace", "100ms", "--"] + Self.daemonizing
            }
            #expect(result.code == 0, "\(result.err)")
            #expect(result.err.contains("held as a child subreaper only") && result.err.contains("read-only"), "\(result.err)")
            let daemon = try #require(Self.daemonPID(in: result.out), "\(result.out)")
            #expect(kill(daemon, 0) != 0 && errno == ESRCH, "daemon \(daemon) outlived jobsup")
        }
    }
}

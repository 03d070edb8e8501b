import Foundation
import Glibc
@testable import JobObjects
import Testing

@Suite("kill-on-close survives SIGKILL of the owner")
struct OwnerDeathTests {
    @Test func sigkilledOwnerTakesItsJobAlong() async throws {
        // The owner is a jobsup process, itself in a job of ours so that the
        // test never loses track of it.
        try await withJobObject(name: uniqueJobName()) { outer async throws in
            let inner = uniqueJobName()
            let owner = try spawnPiped(outer, [jobsupPath, "run", "--name", inner, "--cgroup-parent", outer.path + "/jobs",
                                               "--", "sh", "-c", "setsid sh -c 'sleep 1000 & echo $!' & wait; sleep 1000 & echo ready; wait"])
            let lines = await PipeReader.readUntil("ready", from: owner.standardOutput!)
            let daemon = try #require(lines.first.flatMap { pid_t($0) })
            let job = try JobObject.open(name: inner, parent: outer.path + "/jobs")
            let members = try job.processIDs().map(watch)
            #expect(members.map(\.pid).contains(daemon) && members.count == 3)

            // A cgroup the payload made inside its job goes too.
            #expect(mkdir(job.path + "/nested", 0o755) == 0)
            try owner.signal(SIGKILL)
            #expect(await owner.wait() == .signaled(signal: SIGKILL, coreDumped: false))
            // The watchdog kills the job at once and removes its cgroup.
            try await job.waitUntilEmpty()
            #expect(await eventually(within: .seconds(90)) { access(job.path, F_OK) != 0 })
            try owner.standardOutput!.close()
            expectNothingLeft(path: job.path, processes: members)
        }
    }

    @Test func watchdogIsOutsideEveryJobAndNotAZombie() async throws {
        try await withJobObject(name: uniqueJobName()) { _ async throws in
            try JobWatchdog.shared.confirmRunning()
            let watchdog = try #require(JobWatchdog.shared.pid)
            let cgroup = try String(contentsOfFile: "/proc/\(watchdog)/cgroup", encoding: .utf8)
            #expect(!cgroup.contains("/t-"))
            #expect(kill(watchdog, 0) == 0)
            // The exec'd watchdog, not a copy of this process.
            #expect(try String(contentsOfFile: "/proc/\(watchdog)/cmdline", encoding: .utf8) == "jobobjects-watchdog\0")
        }
    }

    @Test func prestartedWatchdogIsTheOneThatWatches() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        // A watchdog of the test's own, beside the shared one.
        let watchdog = JobWatchdog()
        #expect(watchdog.prestart())
        let pid = try #require(watchdog.pid)
        try watchdog.watch(job.path, parent: nil)
        try watchdog.confirmRunning()
        #expect(watchdog.pid == pid)
        #expect(try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) == "jobobjects-watchdog\0")
        // Kept off this CPU while it exec'd; confirmed, it may run anywhere this process may.
        #expect(cpusAllowed(pid) == cpusAllowed(getpid()))
        #expect(!watchdog.stopIfIdle())
        watchdog.unwatch(job.path)
        #expect(watchdog.stopIfIdle())
        #expect(kill(pid, 0) != 0)
        try await job.close()
        expectNothingLeft(path: job.path)
    }

    /// Asked to stop when idle, the watchdog exits as the last job is
    /// unwatched, before anyone waits for it; stopIfIdle reaps it, and a job
    /// watched later gets a new watchdog, which stays.
    @Test func watchdogToldToStopWhenIdleExitsAsTheLastJobIsUnwatched() async throws {
        let first = try JobObject.create(name: uniqueJobName())
        let second = try JobObject.create(name: uniqueJobName())
        let watchdog = JobWatchdog()
        try watchdog.watch(first.path, parent: nil)
        try watchdog.watch(second.path, parent: nil)
        try watchdog.confirmRunning()
        let pid = try #require(watchdog.pid)
        watchdog.stopWhenIdle()
        watchdog.unwatch(first.path)
        #expect(watchdog.pid == pid)
        watchdog.unwatch(second.path)
        #expect(watchdog.pid == nil)
        #expect(await eventually { processState(pid) == "Z" })
        #expect(watchdog.stopIfIdle())
        #expect(processState(pid) == nil)

        try watchdog.watch(first.path, parent: nil)
        try watchdog.confirmRunning()
        let next = try #require(watchdog.pid)
        #expect(next != pid)
        watchdog.unwatch(first.path)
        #expect(watchdog.pid == next)
        #expect(watchdog.stopIfIdle())
        #expect(processState(next) == nil)
        try await first.close()
        try await second.close()
        expectNothingLeft(path: first.path)
        expectNothingLeft(path: second.path)
    }

    /// The exec may fail before the first record is sent: the send finds the
    /// child gone, and a forked watchdog must take the record.
    @Test func watchdogWhoseExecFailedBeforeTheFirstRecordIsForked() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let watchdog = JobWatchdog(image: "/nonexistent/jobobjects-watchdog")
        #expect(watchdog.prestart())
        let failed = try #require(watchdog.pid)
        // Its exec has failed and it has exited (a zombie until reaped).
        #expect(await eventually { processState(failed) == "Z" })
        try watchdog.watch(job.path, parent: nil)
        let forked = try #require(watchdog.pid)
        #expect(forked != failed && kill(forked, 0) == 0)
        watchdog.unwatch(job.path)
        #expect(watchdog.stopIfIdle())
        try await job.close()
        expectNothingLeft(path: job.path)
    }

    @Test func watchdogWhoseExecFailsIsForkedAndStillKills() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let sleeper = try job.spawn("/bin/sleep", "1000")
        let watchdog = JobWatchdog(image: "/nonexistent/jobobjects-watchdog")
        try watchdog.watch(job.path, parent: nil)
        try watchdog.confirmRunning()
        let pid = try #require(watchdog.pid)
        // Forked from this process, not exec'd, yet a watchdog all the same.
        #expect(try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) != "jobobjects-watchdog\0")
        #expect(await eventually { (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) == "jobobjects-wd\n" })
        watchdog.killAndRemove(job.path)
        #expect(await sleeper.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        #expect(await eventually { access(job.path, F_OK) != 0 })
        #expect(watchdog.stopIfIdle())
        #expect(kill(pid, 0) != 0)
        try? await job.close()
        expectNothingLeft(path: job.path, processes: [sleeper])
    }
}

/// The CPUs `pid` may run on, as /proc/PID/status lists them.
private func cpusAllowed(_ pid: pid_t) -> String? {
    let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    return status?.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }.map(String.init)
}

/// The state letter of /proc/PID/stat (R, S, Z …), nil once the pid is gone.
private func processState(_ pid: pid_t) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(close, offsetBy: 2)...].first.map(String.init)
}

import Foundation
import Glibc
@testable import JobObjects
import Testing

@Suite("kill-on-close survives SIGKILL of the owner")
struct OwnerDeathTests {
    /// Killed at once, jobsup's watchdog as a rule still shares its memory
    /// (it execs after a second of watching); killed later, the watchdog has
    /// exec'd into an image of its own and carried the job along.
    @Test(arguments: [false, true])
    func sigkilledOwnerTakesItsJobAlong(watchdogInItsOwnImage: Bool) async throws {
        // The owner is a jobsup process, itself in a job of ours so that the
        // test never loses track of it.
        try await withJobObject(name: uniqueJobName()) { outer async throws in
            let inner = uniqueJobName()
            let owner = try spawnPiped(
                outer,
                [
                    jobsupPath, "run", "--name", inner, "--cgroup-parent", outer.path.string + "/jobs",
                    "--", "sh", "-c", "setsid sh -c 'sleep 1000 & echo $!' & wait; sleep 1000 & echo ready; wait",
                ])
            let lines = await PipeReader.readUntil("ready", from: owner.standardOutput!)
            let daemon = try #require(lines.first.flatMap { pid_t($0) })
            let job = try JobObject.open(name: inner, parent: outer.path.appending("jobs"))
            let members = try job.processIDs().map(watch)
            #expect(members.map(\.pid).contains(daemon) && members.count == 3)

            // Cgroups the payload made inside its job go too, however deep.
            var nested = job.path.string
            for level in 0..<12 {
                nested += "/nested\(level)"
                #expect(mkdir(nested, 0o755) == 0)
            }
            if watchdogInItsOwnImage {
                var watchdog: pid_t?
                #expect(
                    await eventually {
                        watchdog = childProcesses(of: owner.pid).first { commandName($0) == "jobobjects-wd" }
                        return watchdog.map { commandLine($0) == "jobobjects-watchdog\0" } ?? false
                    })
            }
            try owner.signal(.kill)
            #expect(await owner.wait() == .signaled(signal: SIGKILL, coreDumped: false))
            // The watchdog kills the job at once and removes its cgroup. (A
            // bound, not waitUntilEmpty: a watchdog that lost the job must
            // fail the test, not hang it.)
            #expect(await eventually(within: .seconds(90)) { (try? job.isEmpty) != false })
            #expect(await eventually(within: .seconds(90)) { access(job.path.string, F_OK) != 0 })
            try owner.standardOutput!.close()
            expectNothingLeft(path: job.path.string, processes: members)
        }
    }

    /// A watchdog killed by someone is replaced at once and the new one is
    /// given every job, so that the owner's SIGKILL next still takes its
    /// jobs along (without it, they lived on for good).
    @Test func aKilledWatchdogIsReplacedAndTheOwnersDeathStillEndsItsJob() async throws {
        try await withJobObject(name: uniqueJobName()) { outer async throws in
            let inner = uniqueJobName()
            let owner = try spawnPiped(
                outer,
                [
                    jobsupPath, "run", "--name", inner, "--cgroup-parent", outer.path.string + "/jobs", "--", "sh", "-c",
                    "echo ready; sleep 1000",
                ])
            _ = await PipeReader.readUntil("ready", from: owner.standardOutput!)
            let job = try JobObject.open(name: inner, parent: outer.path.appending("jobs"))
            let members = try job.processIDs().map(watch)
            var first: pid_t?
            #expect(
                await eventually {
                    first = Self.watchdog(of: owner.pid)
                    return first != nil
                })
            #expect(kill(try #require(first), SIGKILL) == 0)
            // The replacement has taken the job over once its table (a memfd
            // at descriptor 6) names it; only then is the owner killed. (A
            // bound for a hang: the VM tier's loaded, emulated CPUs have
            // taken tens of seconds to run a process's event loop.)
            #expect(
                await eventually(within: .seconds(300)) {
                    childProcesses(of: owner.pid).contains { next in
                        next != first && Self.isWatchdog(next) && Self.table(of: next).contains(job.path.string)
                    }
                }, "no new watchdog took the job over")
            try owner.signal(.kill)
            #expect(await owner.wait() == .signaled(signal: SIGKILL, coreDumped: false))
            #expect(await eventually(within: .seconds(90)) { access(job.path.string, F_OK) != 0 })
            try owner.standardOutput!.close()
            expectNothingLeft(path: job.path.string, processes: members)
        }
    }

    /// The watchdog's table of jobs (watchdog.c's TABLE_FD), as text.
    private static func table(of watchdog: pid_t) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(watchdog)/fd/6") else { return "" }
        return String(decoding: data.map { $0 == 0 ? UInt8(ascii: "\n") : $0 }, as: UTF8.self)
    }

    /// The watchdog child of `owner`.
    private static func watchdog(of owner: pid_t) -> pid_t? {
        childProcesses(of: owner).first(where: isWatchdog)
    }

    /// Whether `pid` is a watchdog, by the name it has before and after its exec.
    private static func isWatchdog(_ pid: pid_t) -> Bool {
        commandName(pid) == "jobobjects-wd"
    }

    @Test func watchdogIsOutsideEveryJobAndNotAZombie() async throws {
        try await withJobObject(name: uniqueJobName()) { _ async throws in
            let watchdog = try #require(JobWatchdog.shared.pid)
            let cgroup = try String(contentsOfFile: "/proc/\(watchdog)/cgroup", encoding: .utf8)
            #expect(!cgroup.contains("/t-"))
            #expect(kill(watchdog, 0) == 0)
            #expect(await eventually { commandName(watchdog) == "jobobjects-wd" })
        }
    }

    /// It is a forked copy of this process that holds only its own
    /// descriptors (the owner's pidfd, its socket, its doorbell, its job table),
    /// and lets no signal but SIGKILL (and SIGSTOP) in, so that
    /// no handler of this process runs in it and Ctrl-C or a SIGTERM meant
    /// for others does not end it.
    @Test func watchdogHoldsOnlyItsDescriptorsAndBlocksEverySignal() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let watchdog = JobWatchdog()
        try watchdog.watch(job.path.string, parent: nil)
        let pid = try #require(watchdog.pid)
        #expect(await eventually { commandName(pid) == "jobobjects-wd" })
        expectOnlyItsOwn(pid)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] { #expect(kill(pid, signal) == 0) }
        // Delivered and held pending (0x4203 = TERM, INT, HUP and USR1), not acted on.
        #expect(statusField(pid, "ShdPnd") == "0000000000004203")
        #expect(processState(pid) != "Z" && processState(pid) != nil)
        watchdog.killAndRemove(job.path.string)
        #expect(await eventually { access(job.path.string, F_OK) != 0 })
        #expect(watchdog.stopIfIdle())
        #expect(processState(pid) == nil)
        try? await job.close()
        expectNothingLeft(path: job.path.string)
    }

    /// After a second of watching a job as a forked copy of this process, the
    /// watchdog execs into an image of its own: this executable, entered
    /// before main. It keeps its descriptors, its blocked signals and its
    /// jobs (see sigkilledOwnerTakesItsJobAlong for one it kills after).
    @Test func watchdogExecsIntoAnImageOfItsOwnAfterASecond() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let sleeper = try job.spawn("/bin/sleep", "1000")
        let watchdog = JobWatchdog()
        try watchdog.watch(job.path.string, parent: nil)
        let pid = try #require(watchdog.pid)
        #expect(await eventually { commandLine(pid) == "jobobjects-watchdog\0" })
        #expect(await eventually { commandName(pid) == "jobobjects-wd" })
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
                == FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        expectOnlyItsOwn(pid)
        watchdog.killAndRemove(job.path.string)
        #expect(await sleeper.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        #expect(await eventually { access(job.path.string, F_OK) != 0 })
        #expect(watchdog.stopIfIdle())
        #expect(processState(pid) == nil)
        try? await job.close()
        expectNothingLeft(path: job.path.string, processes: [sleeper])
    }

    /// Records wait in the watchdog's socket without waking it; when the
    /// socket is full the owner rings the doorbell and the watchdog reads
    /// them all, in order. Thousands of watches later it still acts at once.
    @Test func aFullSocketIsReadNotBlockedOn() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let sleeper = try job.spawn("/bin/sleep", "1000")
        let watchdog = JobWatchdog()
        for i in 0..<5000 {
            // Paths that name no cgroup: the watchdog only records them.
            let path = job.parent.path.string + "/no-such-job-\(i)"
            try watchdog.watch(path, parent: nil)
            watchdog.unwatch(path)
        }
        try watchdog.watch(job.path.string, parent: nil)
        watchdog.killAndRemove(job.path.string)
        #expect(await sleeper.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        #expect(await eventually { access(job.path.string, F_OK) != 0 })
        #expect(watchdog.stopIfIdle())
        try? await job.close()
        expectNothingLeft(path: job.path.string, processes: [sleeper])
    }

    @Test func prestartedWatchdogIsTheOneThatWatches() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        // A watchdog of the test's own, beside the shared one.
        let watchdog = JobWatchdog()
        #expect(watchdog.prestart())
        let pid = try #require(watchdog.pid)
        try watchdog.watch(job.path.string, parent: nil)
        #expect(watchdog.pid == pid)
        #expect(!watchdog.stopIfIdle())
        watchdog.unwatch(job.path.string)
        #expect(watchdog.stopIfIdle())
        #expect(kill(pid, 0) != 0)
        try await job.close()
        expectNothingLeft(path: job.path.string)
    }

    /// Asked to stop when idle, the watchdog exits as the last job is
    /// unwatched, before anyone waits for it, and is reaped as its end is
    /// seen; a job watched later gets a new watchdog, which stays.
    @Test func watchdogToldToStopWhenIdleExitsAsTheLastJobIsUnwatched() async throws {
        let first = try JobObject.create(name: uniqueJobName())
        let second = try JobObject.create(name: uniqueJobName())
        let watchdog = JobWatchdog()
        try watchdog.watch(first.path.string, parent: nil)
        try watchdog.watch(second.path.string, parent: nil)
        let pid = try #require(watchdog.pid)
        watchdog.stopWhenIdle()
        watchdog.unwatch(first.path.string)
        #expect(watchdog.pid == pid)
        watchdog.unwatch(second.path.string)
        #expect(watchdog.pid == nil)
        // Reaped by the handler of its pidfd on the monitor thread (a hang
        // bound: that thread has taken tens of seconds in the loaded VM tier).
        #expect(await eventually(within: .seconds(300)) { processState(pid) == nil })
        #expect(watchdog.stopIfIdle())

        try watchdog.watch(first.path.string, parent: nil)
        let next = try #require(watchdog.pid)
        #expect(next != pid)
        watchdog.unwatch(first.path.string)
        #expect(watchdog.pid == next)
        #expect(watchdog.stopIfIdle())
        #expect(processState(next) == nil)
        try await first.close()
        try await second.close()
        expectNothingLeft(path: first.path.string)
        expectNothingLeft(path: second.path.string)
    }
}

/// Holds nothing but the owner's pidfd (3) and its socket end (4), and once
/// it has exec'd into its own image (after a second of watching: a test on a
/// busy machine may see either) the memfd its state came in (5); blocks
/// every signal but SIGKILL and SIGSTOP.
private func expectOnlyItsOwn(_ watchdog: pid_t, sourceLocation: SourceLocation = #_sourceLocation) {
    let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(watchdog)/fd")) ?? []
    #expect(descriptors.sorted() == ["3", "4", "5", "6"], "\(descriptors.sorted())", sourceLocation: sourceLocation)
    // The owner's pidfd, its socket, the doorbell, the job table.
    let targets = ["3", "4", "5", "6"].map { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(watchdog)/fd/\($0)") }
    #expect(targets[0] == "anon_inode:[pidfd]", sourceLocation: sourceLocation)
    #expect(targets[1]?.hasPrefix("socket:") == true, sourceLocation: sourceLocation)
    #expect(targets[2] == "anon_inode:[eventfd]", sourceLocation: sourceLocation)
    #expect(targets[3] == "/memfd:jobobjects-watchdog (deleted)", sourceLocation: sourceLocation)
    // Every bit but SIGKILL's (9) and SIGSTOP's (19).
    #expect(statusField(watchdog, "SigBlk") == "fffffffffffbfeff", sourceLocation: sourceLocation)
}

/// /proc/PID/comm without its newline.
func commandName(_ pid: pid_t) -> String? {
    (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines)
}

/// /proc/PID/cmdline as it is, NULs included.
private func commandLine(_ pid: pid_t) -> String? {
    try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)
}

/// The children of every thread of `pid` (a watchdog replaced from the
/// event loop's thread is that thread's child, not the main thread's).
func childProcesses(of pid: pid_t) -> [pid_t] {
    let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return threads.flatMap { thread in
        let list = (try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/children", encoding: .utf8)) ?? ""
        return list.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}

/// A field of /proc/PID/status, nil once the pid is gone.
private func statusField(_ pid: pid_t, _ name: String) -> String? {
    let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    let line = status?.split(separator: "\n").first { $0.hasPrefix(name + ":") }
    return line.map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
}

/// The state letter of /proc/PID/stat (R, S, Z …), nil once the pid is gone.
private func processState(_ pid: pid_t) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(close, offsetBy: 2)...].first.map(String.init)
}

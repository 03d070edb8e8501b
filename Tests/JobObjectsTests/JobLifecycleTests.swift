import Foundation
import Glibc
@testable import JobObjects
import Testing

@Suite("job lifecycle: close, terminate, freeze")
struct JobLifecycleTests {
    /// A payload that daemonizes (double fork + setsid) and prints the
    /// daemon's pid, then "ready".
    static let daemonizer = "setsid sh -c 'sleep 1000 & echo $!' & wait; echo ready"

    @Test func closingKillsADoubleForkedSetsidDaemon() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let payload = try spawnPiped(job, ["sh", "-c", Self.daemonizer])
        let lines = await PipeReader.readUntil("ready", from: payload.standardOutput!)
        try payload.standardOutput!.close()
        let daemon = try watch(#require(lines.first.flatMap { pid_t($0) }))
        _ = await payload.wait()
        #expect(!isGone(daemon))
        #expect(try job.processIDs().contains(daemon.pid))
        try await job.close()
        expectNothingLeft(path: job.path.string, processes: [daemon, payload])
    }

    @Test(arguments: [TerminationMethod.cgroupKill, .freezeAndKill])
    func terminateEmptiesAJobOf200Sleepers(_ method: TerminationMethod) async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let payload = try spawnPiped(job, ["sh", "-c", "for i in $(seq 200); do sleep 1000 & done; echo ready; wait"])
        _ = await PipeReader.readUntil("ready", from: payload.standardOutput!)
        try payload.standardOutput!.close()
        let members = try job.processIDs().map(watch)
        #expect(members.count == 201)
        try job.kill(using: method)
        try await job.waitUntilEmpty()
        #expect(try job.isEmpty)
        #expect(try job.processIDs().isEmpty)
        #expect(job.terminationMethod == method)
        try await job.close()
        expectNothingLeft(path: job.path.string, processes: members)
    }

    @Test func terminateRecordsTheExitCode() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let sleeper = try job.spawn("sleep", "1000")
        try await job.terminate(exitCode: 42)
        #expect(job.exitCode == 42)
        #expect(await sleeper.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        try await job.close()
        expectNothingLeft(path: job.path.string, processes: [sleeper])
    }

    @Test func freezeStopsABusyLoopAndThawResumesIt() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let loop = try job.spawn("sh", "-c", "while :; do :; done")
            #expect(await eventually { ((try? job.accounting().totalTime) ?? .zero) > .zero })
            try await job.freeze()
            let frozenAt = try job.accounting().totalTime
            // An observation window, not a wait for an event: a frozen task
            // must not be charged a single microsecond during it.
            try await Task.sleep(for: .milliseconds(300))
            #expect(try job.accounting().totalTime == frozenAt)
            #expect(try String(contentsOfFile: "/proc/\(loop.pid)/stat", encoding: .utf8).contains(") S "))
            try await job.thaw()
            #expect(await eventually { ((try? job.accounting().totalTime) ?? .zero) > frozenAt })
        }
    }

    @Test func signalReachesEveryMember() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let payload = try spawnPiped(job, ["sh", "-c", "sleep 1000 & sleep 1000 & echo ready; wait"])
            _ = await PipeReader.readUntil("ready", from: payload.standardOutput!)
            try payload.standardOutput!.close()
            let members = try job.processIDs().map(watch)
            #expect(try job.signal(.terminate) == 3)
            try await job.waitUntilEmpty()
            #expect(members.allSatisfy(isGone))
        }
    }

    @Test func aDroppedHandleStillKillsItsJob() async throws {
        var path = ""
        var sleeper: ProcessHandle?
        do {
            let job = try JobObject.create(name: uniqueJobName())
            path = job.path.string
            sleeper = try job.spawn("sleep", "1000")
        }
        #expect(await sleeper!.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        // The watchdog removes the cgroup once it is empty.
        #expect(await eventually { access(path, F_OK) != 0 })
        expectNothingLeft(path: path, processes: [sleeper!])
    }

    @Test func detachLeavesTheJobAndOpenFindsIt() async throws {
        let name = uniqueJobName()
        let job = try JobObject.create(name: name)
        let sleeper = try job.spawn("sleep", "1000")
        job.detach()
        try await job.close()  // a detached handle's close does nothing
        #expect(!isGone(sleeper))
        let opened = try JobObject.open(name: name)
        #expect(try opened.processIDs() == [sleeper.pid])
        #expect(try opened.accounting().activeProcesses == 1)
        try await opened.close()  // opened without killOnClose: still running
        #expect(!isGone(sleeper))
        let owner = try JobObject.open(name: name, killOnClose: true)
        try await owner.close()
        #expect(await sleeper.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        expectNothingLeft(path: job.path.string, processes: [sleeper])
    }

    @Test func closedHandleRefusesToSpawn() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        try await job.close()
        let error = #expect(throws: JobObjectError.self) { try job.spawn("true") }
        #expect(error?.code == .jobClosed)
        try await job.close()
        expectNothingLeft(path: job.path.string)
    }

    @Test func assignMovesAnExistingProcessVerifiedByPidfd() async throws {
        let outside = try JobObject.create(name: uniqueJobName())
        let target = try JobObject.create(name: uniqueJobName())
        let sleeper = try outside.spawn("sleep", "1000")
        try target.assign(sleeper)
        #expect(try target.processIDs() == [sleeper.pid])
        #expect(try outside.processIDs().isEmpty)
        try sleeper.signal(.kill)
        _ = await sleeper.wait()
        let error = #expect(throws: JobObjectError.self) { try target.assign(sleeper) }
        #expect(error?.code == .processExited)
        try await outside.close()
        try await target.close()
        expectNothingLeft(path: target.path.string, processes: [sleeper])
        expectNothingLeft(path: outside.path.string)
    }

    @Test func nestedCgroupsMadeInsideTheJobAreRemoved() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let inner = job.path.string + "/inner/deeper"
        #expect(mkdir(job.path.string + "/inner", 0o755) == 0 && mkdir(inner, 0o755) == 0)
        try await job.close()
        expectNothingLeft(path: job.path.string)
    }
}

import Glibc
@testable import JobObjects
import SystemPackage
import Testing

@Suite("signals by name, run and collect, graceful termination")
struct RunAndTerminationTests {
    @Test func signalsByNameAndNumber() {
        for (text, number) in [
            ("TERM", SIGTERM), ("sigterm", SIGTERM), ("SIGTERM", SIGTERM), ("15", SIGTERM),
            ("usr1", SIGUSR1), ("CHLD", SIGCHLD), ("64", 64),
        ] {
            #expect(Signal(name: text)?.rawValue == number, "\(text)")
        }
        let realTime = Signal.realTime
        #expect(Signal(name: "RTMIN")?.rawValue == realTime.lowerBound)
        #expect(Signal(name: "SIGRTMIN+2")?.rawValue == realTime.lowerBound + 2)
        #expect(Signal(name: "RTMAX-1")?.rawValue == realTime.upperBound - 1)
        for bad in ["", "FOO", "0", "65", "-9", "RTMIN+100", "RTMIN-1", "RTMAX+1", "SIG", "0x0f"] {
            #expect(Signal(name: bad) == nil, "\(bad)")
        }
        // Every name the type prints, it reads back.
        for number in Int32(1)...31 {
            #expect(Signal(name: Signal(number).name)?.rawValue == number, "\(number)")
        }
        for number in realTime {
            #expect(Signal(name: Signal(number).name)?.rawValue == number, "\(number)")
        }
        #expect(Signal.terminate.description == "SIGTERM")
    }

    @Test func runCollectsBothStreamsAndTheStatus() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        var options = SpawnOptions("/bin/sh", arguments: ["-c", "echo out; echo err >&2; exit 3"])
        options.standardInput = .null
        let result = try await job.run(options)
        #expect(result.status == .exited(code: 3))
        #expect(result.standardOutputText == "out\n")
        #expect(result.standardErrorText == "err\n")
        try await job.close()
        expectNothingLeft(path: job.path.string)
    }

    @Test func runCollectsMoreThanAPipeHolds() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        // 3 MiB on each stream at once: neither may block the other.
        let script = "head -c 3145728 /dev/zero & head -c 3145728 /dev/zero >&2; wait"
        let result = try await job.run(SpawnOptions("/bin/sh", arguments: ["-c", script]), outputLimit: 4 << 20)
        #expect(result.status == .exited(code: 0))
        #expect(result.standardOutput.count == 3 << 20 && result.standardError.count == 3 << 20)
        try await job.close()
        expectNothingLeft(path: job.path.string)
    }

    @Test func outputBeyondTheLimitKillsTheProcessAndSaysSo() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        do {
            _ = try await job.run(SpawnOptions("/bin/cat", arguments: ["/dev/zero"]), outputLimit: 100_000)
            Issue.record("run returned although cat wrote without end")
        } catch {
            #expect(error.code == .outputLimitExceeded)
            #expect(error.message.contains("100000 bytes"))
        }
        #expect(await eventually { (try? job.isEmpty) == true })
        await #expect(throws: JobObjectError.self) { try await job.run(SpawnOptions("/bin/true"), outputLimit: -1) }
        try await job.close()
        expectNothingLeft(path: job.path.string)
    }

    /// Chunks arrive while the process runs, not only at its end.
    @Test func pipeOutputStreamsAsTheProcessWrites() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        var options = SpawnOptions("/bin/sh", arguments: ["-c", "echo first; read line; echo $line"])
        options.standardInput = .pipe
        options.standardOutput = .pipe
        let process = try job.spawn(options)
        var chunks = PipeOutput.chunks(from: process.standardOutput!).makeAsyncIterator()
        #expect(String(decoding: try #require(try await chunks.next()), as: UTF8.self) == "first\n")
        #expect(process.exitStatus == nil)
        _ = try process.standardInput!.writeAll(Array("second\n".utf8))
        #expect(String(decoding: try #require(try await chunks.next()), as: UTF8.self) == "second\n")
        #expect(try await chunks.next() == nil)
        try process.standardInput!.close()
        #expect(await process.wait() == .exited(code: 0))
        try await job.close()
        expectNothingLeft(path: job.path.string, processes: [process])
    }

    @Test func gracefulTerminationSaysWhatItHadToDo() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        #expect(try await job.terminate(.default) == .wasEmpty)

        let polite = try job.spawn("/bin/sleep", "1000")
        #expect(try await job.terminate(GracefulTermination(signal: .terminate, grace: .seconds(60))) == .leftWithinGrace(signalled: 1))
        #expect(await polite.wait() == .signaled(signal: SIGTERM, coreDumped: false))

        var stubborn = SpawnOptions("/bin/sh", arguments: ["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
        stubborn.standardOutput = .pipe
        let shell = try job.spawn(stubborn)
        _ = await PipeReader.readUntil("ready", from: shell.standardOutput!)
        let outcome = try await job.terminate(GracefulTermination(signal: .terminate, grace: .milliseconds(200)), exitCode: 9)
        // The shell and, as a rule, its sleep got SIGTERM; the shell ignored it.
        guard case .killedAfterGrace(let signalled) = outcome, signalled >= 1 else {
            Issue.record("outcome \(outcome)")
            return
        }
        #expect(await shell.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        #expect(job.exitCode == 9)
        try shell.standardOutput!.close()

        let sleeper = try job.spawn("/bin/sleep", "1000")
        let immediate = try await job.terminate(.immediate)
        #expect(immediate == .killedAfterGrace(signalled: 0), "\(immediate)")
        #expect(await sleeper.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        try await job.close()
        expectNothingLeft(path: job.path.string, processes: [polite, shell, sleeper])
    }

    /// Shells that fork as fast as they can: a sweep that listed the job once
    /// would miss what they forked while it went round, and the job would
    /// not empty. Repeated until a pass finds nothing new, it does.
    @Test func aSignalReachesProcessesForkedDuringTheSweep() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        // 150 each, then wait: enough that the sweep meets forks in flight,
        // bounded so the machine never runs out of pids.
        var forker = SpawnOptions("/bin/sh", arguments: ["-c", "i=0; while [ $i -lt 150 ]; do /bin/sleep 1000 & i=$((i+1)); done; wait"])
        forker.standardInput = .null
        let shells = try (0..<8).map { _ in try job.spawn(forker) }
        // Forking under way (how fast depends on the machine: the VM tier
        // emulates its CPUs); the shells go on while the sweep runs.
        #expect(await eventually { ((try? job.processIDs().count) ?? 0) > 2 * shells.count })
        let signalled = try job.signal(.terminate)
        #expect(signalled > 2 * shells.count)
        // Emptied without a kill; a sweep that missed a sleep would leave it
        // there for 1000 s.
        #expect(await eventually(within: .seconds(60)) { (try? job.isEmpty) == true })
        for shell in shells { #expect(await shell.wait() == .signaled(signal: SIGTERM, coreDumped: false)) }
        try await job.close()
        expectNothingLeft(path: job.path.string, processes: shells)
    }
}

extension RunAndTerminationTests {
    /// A job killed through cgroup.kill takes new processes again, by each
    /// path: the default one joins (a child cloned into a killed cgroup is
    /// SIGKILLed at birth on some kernels, this machine's among them).
    @Test func aTerminatedJobTakesNewProcesses() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let first = try job.spawn("/bin/sleep", "1000")
        try await job.terminate(exitCode: 9)
        #expect(await first.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        let second = try job.spawn("/bin/sleep", "1000")
        #expect(second.spawnPath == .cloneThenJoin || !KernelFeatures.current.cloneIntoCgroup)
        #expect(try job.processIDs() == [second.pid])
        #expect(second.exitStatus == nil)
        try await job.close()
        expectNothingLeft(path: job.path.string, processes: [first, second])
    }
}

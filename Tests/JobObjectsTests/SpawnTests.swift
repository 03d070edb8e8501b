import CJobShim
import Foundation
import Glibc
@testable import JobObjects
import SystemPackage
import Testing

@Suite("spawning into a job")
struct SpawnTests {
    /// Every spawn path this kernel supports; fork is always available.
    static var paths: [SpawnPath] {
        var paths: [SpawnPath] = [.cloneThenJoin, .forkThenJoin]
        if KernelFeatures.current.cloneIntoCgroup { paths = [.clone3IntoCgroup] + paths + [.forkIntoCgroup] }
        return paths
    }

    /// The paths a child waiting at a start gate can take here.
    static var forkedPaths: [SpawnPath] { paths.filter { $0.forked == $0 } }

    @Test(arguments: paths)
    func childIsInsideTheJobFromItsFirstInstruction(_ path: SpawnPath) async throws {
        let job = try JobObject.create(name: uniqueJobName())
        var options = SpawnOptions("/bin/cat", arguments: ["/proc/self/cgroup"])
        options.standardOutput = .pipe
        let process = try job.spawn(options, path: path)
        #expect(process.spawnPath == path)
        let output = await PipeReader.readAll(process.standardOutput!)
        try process.standardOutput!.close()
        // The root of its cgroup namespace, which it made once in the job.
        #expect(output.contains("0::/\n"), "\(output)")
        #expect(await process.wait() == .exited(code: 0))
        try await job.close()
        expectNothingLeft(path: job.path.string, processes: [process])
    }

    /// clone3 only where the kernel offers it and this build has it; clone
    /// and join otherwise. Each path these choices lead to is forced on this
    /// machine by the tests above (`paths`).
    @Test func spawnPathFallsBackToWhatTheKernelAndBuildHave() {
        func path(clone3: Bool, intoCgroup: Bool, compiled: Bool) -> SpawnPath {
            KernelFeatures(
                clone3: clone3, cloneIntoCgroup: intoCgroup, waitidPidfd: true, cgroupNamespace: true, clone3PathCompiled: compiled
            ).spawnPath
        }
        #expect(path(clone3: true, intoCgroup: true, compiled: true) == .clone3IntoCgroup)
        #expect(path(clone3: true, intoCgroup: true, compiled: false) == .cloneThenJoin)
        #expect(path(clone3: true, intoCgroup: false, compiled: true) == .cloneThenJoin)
        #expect(path(clone3: false, intoCgroup: false, compiled: true) == .cloneThenJoin)
        // A gated child is forked: into the cgroup where the vfork path
        // would be, joining it where that path would join.
        #expect(SpawnPath.clone3IntoCgroup.forked == .forkIntoCgroup)
        #expect(SpawnPath.cloneThenJoin.forked == .forkThenJoin)
        #expect(SpawnPath.forkThenJoin.forked == .forkThenJoin)
        #expect(SpawnPath.forkIntoCgroup.forked == .forkIntoCgroup)
        // This build, on x86_64 or aarch64, has every path.
        for candidate in [SpawnPath.clone3IntoCgroup, .cloneThenJoin, .forkThenJoin, .forkIntoCgroup] {
            #expect(jobshim_spawn_path_compiled(candidate.shimValue) == 1, "\(candidate)")
        }
        #expect(jobshim_spawn_path_compiled(0) == 0)
    }

    /// The gated child is in the job with its identity before it execs; the
    /// byte lets it exec (same pid); until then it can only be killed.
    @Test(arguments: forkedPaths)
    func aGatedChildWaitsInTheJobUntilItsGateOpens(_ path: SpawnPath) async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let gate = try FileDescriptor.pipe()
        var options = SpawnOptions("/bin/sh", arguments: ["-c", "exit 5"])
        options.startGate = gate.readEnd
        options.workingDirectory = "/tmp"
        let process = try job.spawn(options, path: path)
        try gate.readEnd.close()
        #expect(process.spawnPath == path)
        #expect(try job.processIDs() == [process.pid])
        // Not exec'd yet: still this test's image, already in /tmp.
        let ownImage = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(process.pid)/exe") == ownImage)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(process.pid)/cwd") == "/tmp")
        #expect(!isGone(process))
        _ = try gate.writeEnd.writeAll([UInt8(1)])
        #expect(await process.wait() == .exited(code: 5))
        try gate.writeEnd.close()

        // One that never gets its byte ends with the job.
        let never = try FileDescriptor.pipe()
        options.startGate = never.readEnd
        // The library's own choice for a gated child, forked in any case.
        let cancelled = try job.spawn(options)
        #expect(cancelled.spawnPath == KernelFeatures.current.spawnPath.forked)
        try await job.terminate()
        #expect(await cancelled.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        try never.readEnd.close()
        try never.writeEnd.close()
        try await job.close()
        expectNothingLeft(path: job.path.string, processes: [process, cancelled])
    }

    /// A later member enters the mount namespace an earlier one was given
    /// and sees its mounts; the host never does.
    @Test func aMemberJoinsAnotherMembersMountNamespace() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let source = try TemporaryDirectory()
            let target = try TemporaryDirectory()
            try "seen\n".write(toFile: source.path + "/marker", atomically: false, encoding: .utf8)
            let mounts = [SpawnOptions.BindMount(source: FilePath(source.path), target: FilePath(target.path), readOnly: true)]
            var options = SpawnOptions("/bin/sleep", arguments: ["100"])
            options.mountNamespace = .init(mounts: mounts)
            let first = try job.spawn(options)
            let namespace = try FileDescriptor.open("/proc/\(first.pid)/ns/mnt", .readOnly)
            defer { try? namespace.close() }
            // Found through the mounts it was told of, before the spawn.
            var joining = SpawnOptions("cat", arguments: ["marker"])
            joining.workingDirectory = FilePath(target.path)
            joining.mountNamespace = .joining(namespace, mounted: mounts)
            let result = try await job.run(joining)
            #expect(result.status == .exited(code: 0))
            #expect(result.standardOutputText == "seen\n")
            #expect(!FileManager.default.fileExists(atPath: target.path + "/marker"))
            // A descriptor that is not a mount namespace is the spawn's error.
            let notANamespace = try FileDescriptor.open("/proc/self/ns/net", .readOnly)
            defer { try? notANamespace.close() }
            joining.mountNamespace = .joining(notANamespace, mounted: mounts)
            #expect {
                _ = try job.spawn(joining)
            } throws: { error in
                "\(error)".contains("cannot enter the mount namespace given to join")
            }
            try await job.terminate()
            _ = await first.wait()
        }
    }

    /// A failure before the gate is the spawn's error, as without a gate.
    @Test func aGatedChildThatCannotBeSetUpIsASpawnError() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let gate = try FileDescriptor.pipe()
            defer {
                try? gate.readEnd.close()
                try? gate.writeEnd.close()
            }
            var options = SpawnOptions("/bin/true")
            options.startGate = gate.readEnd
            // /root is 0700: nobody cannot enter it, which the child finds
            // after its identity switch.
            options.credentials = SpawnOptions.Credentials(uid: 65534, gid: 65534)
            options.workingDirectory = "/root"
            let error = #expect(throws: JobObjectError.self) { try job.spawn(options) }
            #expect(error?.errno == .permissionDenied, "\(String(describing: error))")
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test func spawnedPidIsListedInCgroupProcs() async throws {
        let job = try JobObject.create(name: uniqueJobName())
        let sleeper = try job.spawn("sleep", "1000")
        let procs = try String(contentsOfFile: job.path.string + "/cgroup.procs", encoding: .utf8)
        #expect(procs.split(separator: "\n").contains(Substring(String(sleeper.pid))))
        #expect(try job.processIDs() == [sleeper.pid])
        try await job.close()
        #expect(await sleeper.wait() == .signaled(signal: SIGKILL, coreDumped: false))
        expectNothingLeft(path: job.path.string, processes: [sleeper])
    }

    @Test func exitStatusesDistinguishCodeSignalAndCore() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            #expect(try await job.spawn("sh", "-c", "exit 7").wait() == .exited(code: 7))
            var options = SpawnOptions("sh", arguments: ["-c", "kill -TERM $$"])
            let termed = try job.spawn(options)
            #expect(await termed.wait() == .signaled(signal: SIGTERM, coreDumped: false))
            #expect(await termed.wait().shellStatus == 143)
            // A core dump needs a core size limit above zero; the pattern may
            // still send it nowhere, so only the signal is certain.
            options = SpawnOptions("sh", arguments: ["-c", "kill -SEGV $$"])
            options.resourceLimits = [.coreSize(0)]
            #expect(try await job.spawn(options).wait() == .signaled(signal: SIGSEGV, coreDumped: false))
        }
    }

    @Test func environmentWorkingDirectoryAndPipes() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try spawnPiped(job, ["sh", "-c", "pwd; echo $GREETING; echo err >&2; read line; echo got $line"], stderr: true) {
                $0.environment = .custom(["GREETING": "hello", "PATH": "/usr/bin:/bin"])
                $0.workingDirectory = "/tmp"
                $0.standardInput = .pipe
            }
            try process.standardInput!.writeAll("input\n".utf8)
            try process.standardInput!.close()
            let out = await PipeReader.readAll(process.standardOutput!)
            let err = await PipeReader.readAll(process.standardError!)
            try process.standardOutput!.close()
            try process.standardError!.close()
            #expect(out == "/tmp\nhello\ngot input\n")
            #expect(err == "err\n")
            #expect(await process.wait() == .exited(code: 0))
        }
    }

    /// `.inherit` hands the child this process's environ as it is; the
    /// other kinds build a list.
    @Test func inheritedAndUpdatedEnvironments() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            func environment(of process: ProcessHandle) async throws -> Set<Substring> {
                let text = await PipeReader.readAll(process.standardOutput!)
                try process.standardOutput!.close()
                #expect(await process.wait() == .exited(code: 0))
                return Set(text.split(separator: "\0"))
            }
            let ours = Set(Spawner.currentEnvironment().map { Substring($0) })
            let inherited = try await environment(of: spawnPiped(job, ["/usr/bin/env", "-0"]) { $0.environment = .inherit })
            #expect(inherited == ours)
            let updated = try await environment(
                of: spawnPiped(job, ["/usr/bin/env", "-0"]) {
                    $0.environment = .inheritUpdating(["JOBOBJECTS_ADDED": "1", "PATH": nil])
                })
            #expect(updated == ours.filter { !$0.hasPrefix("PATH=") }.union(["JOBOBJECTS_ADDED=1"]))
        }
    }

    @Test func onlyRequestedDescriptorsAreInherited() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            // A descriptor the parent holds without O_CLOEXEC must not leak.
            let leaky = open("/dev/null", O_RDONLY)
            defer { close(leaky) }
            let process = try spawnPiped(job, ["sh", "-c", "ls /proc/self/fd"])
            let fds = await PipeReader.readAll(process.standardOutput!).split(separator: "\n")
            try process.standardOutput!.close()
            // 0, 1, 2 and the descriptor ls opens to read the directory.
            #expect(!fds.contains(Substring(String(leaky))) || leaky <= 3)
            #expect(fds.count <= 4)
            _ = await process.wait()
        }
    }

    @Test func newSessionAndProcessGroup() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try spawnPiped(job, ["sh", "-c", "ps -o pid=,pgid=,sid= -p $$"]) { $0.processGroup = .newSession }
            let fields = await PipeReader.readAll(process.standardOutput!).split(separator: " ", omittingEmptySubsequences: true)
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            try process.standardOutput!.close()
            #expect(fields.count == 3 && fields[0] == fields[1] && fields[1] == fields[2])
            _ = await process.wait()
        }
    }

    /// A session with a terminal: standard input, a pty's slave end, is the
    /// child's controlling terminal (`/dev/tty` opens); without a terminal
    /// there the spawn fails and says why.
    @Test func aNewSessionTakesItsTerminal() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let pty = try PseudoTerminal.open()
            defer {
                try? pty.controller.close()
                try? pty.terminal.close()
            }
            let script = "if true </dev/tty 2>/dev/null; then echo has-terminal $(ps -o tty= -p $$); else echo none; fi"
            let process = try spawnPiped(job, ["sh", "-c", script]) {
                $0.processGroup = .newSessionWithTerminal
                $0.standardInput = .fileDescriptor(pty.terminal)
            }
            let output = await PipeReader.readAll(process.standardOutput!)
            try process.standardOutput!.close()
            #expect(output == "has-terminal \(pty.path.string.dropFirst("/dev/".count))\n")
            _ = await process.wait()
            // The same without the terminal flag: sh has no controlling
            // terminal. (A new pair: the first hung up when its session ended.)
            let second = try PseudoTerminal.open()
            defer {
                try? second.controller.close()
                try? second.terminal.close()
            }
            let plain = try spawnPiped(job, ["sh", "-c", script]) {
                $0.processGroup = .newSession
                $0.standardInput = .fileDescriptor(second.terminal)
            }
            let plainOutput = await PipeReader.readAll(plain.standardOutput!)
            #expect(plainOutput == "none\n", "\(plainOutput)")
            try plain.standardOutput!.close()
            _ = await plain.wait()
            let error = #expect(throws: JobObjectError.self) {
                try spawnPiped(job, ["true"]) {
                    $0.processGroup = .newSessionWithTerminal
                    $0.standardInput = .null
                }
            }
            #expect(error?.message.contains("controlling terminal") == true, "\(String(describing: error))")
        }
    }

    @Test func missingExecutableIsAClearErrorAndLeavesTheJobUsable() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let error = #expect(throws: JobObjectError.self) { try job.spawn("definitely-not-a-command-xyz") }
            #expect(error?.code == .executableNotFound)
            #expect(error?.message.contains("not found in PATH") == true)
            let byPath = #expect(throws: JobObjectError.self) { try job.spawn("/nonexistent/tool") }
            #expect(byPath?.code == .executableNotFound)
            let plainFile = "/tmp/jobobjects-plain-\(getpid())"
            _ = FileManager.default.createFile(atPath: plainFile, contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
            defer { unlink(plainFile) }
            let notExecutable = #expect(throws: JobObjectError.self) { try job.spawn(plainFile) }
            // It exists: it cannot be executed (a shell's 126), rather than not found.
            #expect(notExecutable?.code == .spawnFailed)
            #expect(notExecutable?.message.contains("is not executable") == true)
            var options = SpawnOptions("true")
            options.workingDirectory = "/nonexistent-dir"
            #expect(throws: JobObjectError.self) { try job.spawn(options) }
            #expect(try job.processIDs().isEmpty)
            let status = try await job.spawn("true").wait()
            #expect(status == .exited(code: 0), "\(status)")
        }
    }

    /// On every path: the vfork paths report in the parent's memory, the
    /// fork path through a pipe.
    @Test(arguments: paths)
    func execFailureInTheChildComesBackAsErrno(_ path: SpawnPath) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            // A script without #! passes the parent's checks and fails in execve.
            let script = "/tmp/jobobjects-noshebang-\(getpid())-\(path)"
            _ = FileManager.default.createFile(atPath: script, contents: Data("echo hi\n".utf8), attributes: [.posixPermissions: 0o755])
            defer { unlink(script) }
            // ETXTBSY while a process forked elsewhere (another test, the
            // watchdog, until it closes what it inherited) still holds the write
            // descriptor; it closes at the exec.
            var error: JobObjectError?
            for _ in 0..<100 {
                error = #expect(throws: JobObjectError.self) { try job.spawn(SpawnOptions(script), path: path) }
                if error?.errno != .textFileBusy { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(error?.code == .spawnFailed)
            #expect(error?.errno == .execFormatError)
            #expect(try job.processIDs().isEmpty)
        }
    }

    /// A signal the parent ignores stays ignored in the payload, as across
    /// execve, on every path: the clone3 path leaves the parent's handlers
    /// to CLONE_CLEAR_SIGHAND, which must keep SIG_IGN as the others do.
    /// (That no handler survives cannot be seen after the exec, which resets
    /// them itself.) One test for all paths: SIGPWR is the process's own.
    @Test func ignoredSignalsStayIgnoredInThePayload() async throws {
        let previous = signal(SIGPWR, SIG_IGN)
        defer { signal(SIGPWR, previous) }
        try await withJobObject(name: uniqueJobName()) { job async throws in
            for path in Self.paths {
                var options = SpawnOptions("/bin/cat", arguments: ["/proc/self/status"])
                options.standardOutput = .pipe
                let process = try job.spawn(options, path: path)
                let status = await PipeReader.readAll(process.standardOutput!)
                try process.standardOutput!.close()
                #expect(await process.wait() == .exited(code: 0))
                let ignored = status.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }
                    .flatMap { UInt64($0.dropFirst("SigIgn:".count).trimmingCharacters(in: .whitespaces), radix: 16) }
                #expect(ignored.map { $0 & (1 << (SIGPWR - 1)) != 0 } == true, "\(path): SigIgn \(String(ignored ?? 0, radix: 16))")
            }
        }
    }

    @Test func signalAfterExitNeverReachesAReusedPid() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let first = try job.spawn("sleep", "1000")
            try first.signal(.kill)
            _ = await first.wait()
            // Ask the kernel to hand the same pid out next (ns_last_pid), so a
            // pid-based API would now hit the new process.
            let lastPid = "/proc/sys/kernel/ns_last_pid"
            if let handle = FileHandle(forWritingAtPath: lastPid) {
                handle.write(Data(String(first.pid - 1).utf8))
                try handle.close()
            }
            let second = try job.spawn("sleep", "1000")
            let error = #expect(throws: JobObjectError.self) { try first.signal(.kill) }
            #expect(error?.code == .processExited)
            #expect(!isGone(second))
            #expect(second.exitStatus == nil)
            if second.pid == first.pid { print("pid \(first.pid) was reused, and the old handle did not touch it") }
        }
    }

    @Test func accountingCountsWhatThePayloadDid() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            for code in 0..<3 { _ = try await job.spawn("sh", "-c", "exit \(code)").wait() }
            // Burn CPU until the job's own cpu.stat shows at least 50 ms.
            let burner = try job.spawn("sh", "-c", "while :; do :; done")
            let burned = await eventually(within: .seconds(60)) {
                ((try? job.accounting().totalTime) ?? .zero) >= .milliseconds(50)
            }
            #expect(burned)
            try burner.signal(.kill)
            _ = await burner.wait()
            let accounting = try job.accounting()
            #expect(accounting.processesStarted == 4)
            #expect(accounting.activeProcesses == 0)
            #expect(
                Set(accounting.exits.map(\.status)) == [
                    .exited(code: 0), .exited(code: 1), .exited(code: 2), .signaled(signal: SIGKILL, coreDumped: false),
                ])
            #expect(accounting.userTime + accounting.systemTime >= .milliseconds(50))
        }
    }
}

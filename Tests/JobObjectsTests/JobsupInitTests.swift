import Foundation
import Glibc
@testable import JobObjects
import Synchronization
import SystemPackage
import Testing

/// `jobsup run` as init, against the conventions tini and dumb-init keep:
/// the built binary, each behaviour as a user meets it.
@Suite("jobsup as init")
struct JobsupInitTests {
    /// Waits on a trap: dash runs a trap only after the command in progress,
    /// and `wait` is interrupted by one at once.
    static let idle = "while :; do sleep 1000 & wait $!; done"

    /// Every signal jobsup is to pass on: 1–64 but those that cannot be
    /// caught (KILL, STOP), its own SIGCHLD, the job-control stops (which
    /// freeze the job instead) and the two glibc keeps for itself (32, 33).
    /// The fault signals are among them: sent by `kill`, they are no fault
    /// of jobsup's.
    static let passedOn: [Int32] = (1...64).filter {
        ![
            SIGKILL, SIGSTOP, SIGCHLD, SIGTSTP, SIGTTIN, SIGTTOU, 32, 33,
        ].contains($0)
    }

    /// Runs jobsup in `job` with `script` as init; returns once init printed "ready".
    static func startReady(
        _ flags: [String], _ script: String, in job: JobObject,
        configure: (inout SpawnOptions) -> Void = { _ in }
    ) async throws -> ProcessHandle {
        let process = try Jobsup.start(["run"] + flags + ["--", "sh", "-c", script], in: job, configure: configure)
        let before = await PipeReader.readUntil("ready", from: process.standardOutput!)
        #expect(before.isEmpty, "\(before)")
        return process
    }

    /// With --reset-signals, because this test process's dispositions are
    /// shared with the tests running beside it, one of which ignores
    /// SIGPWR for a moment (a signal ignored on entry is left alone:
    /// `aSignalIgnoredByTheCallerStaysIgnored`).
    @Test(arguments: passedOn)
    func everyCatchableSignalReachesInit(_ signal: Int32) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try await Self.startReady(
                ["--reset-signals"], "trap 'echo got; exit 0' \(signal); echo ready; \(Self.idle)", in: job)
            #expect(kill(process.pid, signal) == 0)
            let result = await Jobsup.finish(process)
            #expect(result.out == "got\n", "\(signalName(signal)): \(result.out) \(result.err)")
            #expect(result.status == .exited(code: 0), "\(signalName(signal)): \(result.err)")
            // A SIGSEGV another process sent is no crash of jobsup's.
            #expect(!result.err.contains("crashed"), "\(signalName(signal)): \(result.err)")
            #expect(try job.processIDs().isEmpty)
        }
    }

    /// Init leads a process group of its own, so a signal to the caller's
    /// group (a shell job, `kill -- -PGID`) reaches init once, through
    /// jobsup, and not a second time directly.
    @Test func aSignalToTheCallersGroupReachesInitOnce() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let script = """
                n=0; trap 'n=$((n+1)); echo "usr1 $n"' USR1; trap 'echo "count $n"; exit 0' TERM
                echo "groups $(ps -o pgid= -p $$) $(ps -o pgid= -p $PPID)"; echo ready; \(Self.idle)
                """
            let process = try Jobsup.start(["run", "--", "sh", "-c", script], in: job) { $0.processGroup = .newProcessGroup }
            let lines = await PipeReader.readUntil("ready", from: process.standardOutput!)
            let groups = try #require(lines.first).split(separator: " ").dropFirst().compactMap { pid_t($0) }
            #expect(groups.count == 2 && groups[0] != groups[1], "init must not be in jobsup's group: \(lines)")
            #expect(groups.last == process.pid)
            #expect(kill(-process.pid, SIGUSR1) == 0)
            #expect(await PipeReader.readUntil("usr1 1", from: process.standardOutput!).isEmpty)
            // A second USR1, had init been in the group too, comes before TERM.
            #expect(kill(process.pid, SIGTERM) == 0)
            let result = await Jobsup.finish(process)
            #expect(result.out == "count 1\n", "\(result.out)")
            #expect(result.status == .exited(code: 0))
        }
    }

    /// As under `nohup`: a signal the caller ignored stays ignored, by
    /// jobsup (nothing to pass on) and by init.
    @Test func aSignalIgnoredByTheCallerStaysIgnored() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let script = "echo \"init $$\"; grep SigIgn /proc/self/status; echo ready; read line; echo alive"
            let process = try spawnPiped(
                job, ["sh", "-c", "trap '' HUP; exec \"$0\" run -- sh -c \"$1\"", jobsupPath, script],
                stderr: true
            ) { $0.standardInput = .pipe }
            let lines = await PipeReader.readUntil("ready", from: process.standardOutput!)
            let initPID = try #require(lines.first.flatMap { pid_t($0.dropFirst(5)) }, "\(lines)")
            let ignored = try #require(lines.dropFirst().first.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) })
            #expect(ignored & (1 << UInt64(SIGHUP - 1)) != 0, "init must start with SIGHUP ignored: \(lines)")
            #expect(kill(process.pid, SIGHUP) == 0)
            #expect(kill(initPID, SIGHUP) == 0)
            _ = try process.standardInput!.writeAll(Array("go\n".utf8))
            try process.standardInput!.close()
            let result = await Jobsup.finish(process)
            #expect(result.out == "alive\n", "\(result.out) \(result.err)")
            #expect(result.status == .exited(code: 0))
        }
    }

    /// Init starts with the mask jobsup started with (read by grep: dash
    /// clears its mask when it starts), and jobsup still catches, and passes
    /// on, the signals its caller blocked.
    @Test func blockedSignalsStayBlockedInInitAndStillReachJobsup() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let mask = try await Jobsup.run(["run", "--", "grep", "SigBlk", "/proc/self/status"], in: job) {
                $0.blockedSignals = [SIGUSR2, SIGTERM]
            }
            #expect(
                mask.out == String(format: "SigBlk:\t%016llx\n", (1 << UInt64(SIGUSR2 - 1)) | (1 << UInt64(SIGTERM - 1))),
                "\(mask.out) \(mask.err)")
            // USR1, blocked by jobsup's caller (and so by init), reaches
            // jobsup and is passed on as TERM, which init does not block.
            let script = "trap 'echo got-term; exit 0' TERM; echo ready; \(Self.idle)"
            let process = try await Self.startReady(["--rewrite-signal", "USR1:TERM"], script, in: job) {
                $0.blockedSignals = [SIGUSR1]
            }
            #expect(kill(process.pid, SIGUSR1) == 0)
            let result = await Jobsup.finish(process)
            #expect(result.out == "got-term\n")
        }
    }

    /// --reset-signals: init starts with nothing blocked or ignored (but
    /// glibc's own 32 and 33, which no program can change through libc).
    @Test func resetSignalsGivesInitACleanSlate() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try spawnPiped(
                job,
                [
                    "sh", "-c", "trap '' HUP INT; exec \"$0\" run --reset-signals -- grep -E 'Sig(Blk|Ign)' /proc/self/status",
                    jobsupPath,
                ], stderr: true
            ) {
                $0.blockedSignals = [SIGUSR2]
                $0.standardInput = .null
            }
            let result = await Jobsup.finish(process)
            let masks = result.out.split(separator: "\n").compactMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
            let glibcOwn: UInt64 = 0b11 << 31
            #expect(masks.count == 2 && masks.allSatisfy { $0 & ~glibcOwn == 0 }, "\(result.out)")
            #expect(result.status == .exited(code: 0))
        }
    }

    /// `jobsup run --events json -- task 2>&1 | head -1`: once the reader is
    /// gone jobsup's writes fail, and the task still runs to its end.
    @Test func aClosedOutputDoesNotEndTheJob() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            // Init ends only once the reader is gone, so jobsup's event lines
            // about its exit meet a closed pipe.
            let process = try Jobsup.start(["run", "--events", "json", "--", "sh", "-c", "read line; echo finished"], in: job) {
                $0.standardInput = .pipe
            }
            _ = await Jobsup.readLine(process.standardError!)
            try process.standardError!.close()
            _ = try process.standardInput!.writeAll(Array("go\n".utf8))
            try process.standardInput!.close()
            let out = await PipeReader.readAll(process.standardOutput!)
            try process.standardOutput!.close()
            #expect(out == "finished\n")
            #expect(await process.wait() == .exited(code: 0))
        }
    }

    /// SIGTSTP, SIGTTIN or SIGTTOU sent to jobsup stops the whole job:
    /// frozen, and jobsup stopped; SIGCONT thaws it and it runs on.
    @Test(arguments: [SIGTSTP, SIGTTIN, SIGTTOU])
    func aStopSignalFreezesTheJobAndContinueThawsIt(_ signal: Int32) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let name = uniqueJobName()
            let process = try await Self.startReady(["--name", name], "echo ready; read line; echo \"got $line\"", in: job) {
                $0.standardInput = .pipe
            }
            let events = job.path.string + "/jobobjects/\(name)/cgroup.events"
            #expect(kill(process.pid, signal) == 0)
            #expect(await eventually { Self.isFrozen(events) && Self.state(process.pid) == "T" })
            #expect(kill(process.pid, SIGCONT) == 0)
            #expect(await eventually { !Self.isFrozen(events) && Self.state(process.pid) != "T" })
            _ = try process.standardInput!.writeAll(Array("thawed\n".utf8))
            try process.standardInput!.close()
            let result = await Jobsup.finish(process)
            #expect(result.out == "got thawed\n")
            #expect(result.status == .exited(code: 0))
        }
    }

    /// ^Z at a real terminal (a pty, with an interactive bash doing job
    /// control) stops the whole job, and `fg` thaws it and gives init the
    /// terminal back.
    @Test func ctrlZAndFgAtATerminalFreezeAndThawTheWholeJob() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let name = uniqueJobName()
            let events = job.path.string + "/jobobjects/\(name)/cgroup.events"
            // `script` gives bash a pty as its controlling terminal; its
            // input is what the test types.
            let shell = try spawnPiped(job, ["script", "-qfec", "bash --norc --noprofile -i", "/dev/null"], stderr: true) {
                $0.standardInput = .pipe
            }
            let type = { (text: String) throws in _ = try shell.standardInput!.writeAll(Array(text.utf8)) }
            let transcript = Transcript(shell.standardOutput!)
            // Each step waits for what a person would see before the next
            // key. The bound is generous: a saturated, emulated VM starts an
            // interactive bash slowly.
            func expectSoon(_ what: String, _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async {
                if await !eventually(within: .seconds(300), condition) {
                    Issue.record("\(what) did not happen: \(transcript.text)\n\(Self.processTable())", sourceLocation: sourceLocation)
                }
            }
            await expectSoon("bash's prompt") { transcript.text.contains("$ ") || transcript.text.contains("# ") }
            try type("\(jobsupPath) run --name \(name) -- sh -c 'sleep 1000 & echo in\"\"it-ready; read line; echo \"got $line\"'\n")
            await expectSoon("init's start") { transcript.text.contains("init-ready") && Self.populated(events) }
            try type("\u{1A}")
            await expectSoon("the freeze") { Self.isFrozen(events) && transcript.text.contains("Stopped") }
            try type("fg\n")
            await expectSoon("the thaw") { !Self.isFrozen(events) }
            try type("typed-after-fg\n")
            await expectSoon("the job's end") { access(events, F_OK) != 0 }
            try type("exit\n")
            try shell.standardInput!.close()
            _ = await shell.wait()
            let text = await transcript.finished()
            try shell.standardOutput!.close()
            try? shell.standardError!.close()
            #expect(text.contains("Stopped"), "\(text)")
            #expect(text.contains("got typed-after-fg"), "\(text)")
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test func successExitMapsAStatusToZero() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let mapped = try await Jobsup.run(
                ["run", "--success-exit", "143", "--success-exit", "3", "--", "sh", "-c", "kill -TERM $$"], in: job)
            #expect(mapped.status == .exited(code: 0), "\(mapped.err)")
            let other = try await Jobsup.run(["run", "--success-exit", "143", "--", "sh", "-c", "exit 4"], in: job)
            #expect(other.status == .exited(code: 4))
        }
    }

    @Test func rewriteSignalPassesAnotherOnOrDropsIt() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let script = "trap 'echo got-quit; exit 0' QUIT; trap 'echo got-term; exit 0' TERM; echo ready; \(Self.idle)"
            let process = try await Self.startReady(["--rewrite-signal", "TERM:QUIT", "--rewrite-signal", "USR1:0"], script, in: job)
            // Dropped: USR1's default action would end init.
            #expect(kill(process.pid, SIGUSR1) == 0)
            #expect(kill(process.pid, SIGTERM) == 0)
            let result = await Jobsup.finish(process)
            #expect(result.out == "got-quit\n", "\(result.out)")
            #expect(result.status == .exited(code: 0))
        }
    }

    /// When jobsup's parent dies, the kernel sends jobsup the signal, which
    /// it passes on to init.
    @Test func parentDeathSignalReachesInit() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let script = "trap 'echo got-term; exit 0' TERM; echo ready; \(Self.idle)"
            let parent = try spawnPiped(
                job, ["sh", "-c", "\"$0\" run --parent-death-signal TERM -- sh -c \"$1\" & wait", jobsupPath, script]
            ) {
                $0.standardInput = .null
            }
            _ = await PipeReader.readUntil("ready", from: parent.standardOutput!)
            try parent.signal(.kill)
            _ = await parent.wait()
            // EOF once jobsup and init, which share the pipe, have exited.
            let rest = await PipeReader.readAll(parent.standardOutput!)
            try parent.standardOutput!.close()
            #expect(rest == "got-term\n")
            #expect(await eventually { (try? job.processIDs().isEmpty) == true })
        }
    }

    @Test func versionIsPrinted() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["--version"], in: job)
            #expect(result.out.hasPrefix("jobsup "))
            #expect(result.status == .exited(code: 0))
        }
    }

    /// As PID 1 of a PID namespace: `kill -TERM 1` from inside reaches init,
    /// and the job is ended with it.
    @Test func worksAsPID1OfAPIDNamespace() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let script = "echo \"parent $PPID\"; trap 'echo got-term; exit 0' TERM; sleep 1000 & echo ready; kill -TERM 1; \(Self.idle)"
            let process = try spawnPiped(
                job, ["unshare", "--pid", "--fork", "--mount-proc", jobsupPath, "run", "--", "sh", "-c", script],
                stderr: true
            ) {
                $0.standardInput = .null
            }
            let result = await Jobsup.finish(process)
            #expect(result.out == "parent 1\nready\ngot-term\n", "\(result.out) \(result.err)")
            #expect(result.status == .exited(code: 0))
            #expect(try job.processIDs().isEmpty)
        }
    }

    /// Every process with its group, the terminal's group, state and wait
    /// channel: what a hung terminal test needs to be understood.
    static func processTable() -> String {
        let pipe = Pipe()
        let ps = Process()
        ps.executableURL = URL(fileURLWithPath: "/bin/ps")
        ps.arguments = ["-e", "-o", "pid,ppid,pgid,sid,tpgid,stat,wchan:24,args"]
        ps.standardOutput = pipe
        guard (try? ps.run()) != nil else { return "(ps failed)" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        ps.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    static func isFrozen(_ events: String) -> Bool {
        (try? String(contentsOfFile: events, encoding: .utf8))?.contains("frozen 1") == true
    }

    static func populated(_ events: String) -> Bool {
        (try? String(contentsOfFile: events, encoding: .utf8))?.contains("populated 1") == true
    }

    /// The state letter of /proc/PID/stat ("T" when stopped).
    static func state(_ pid: pid_t) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        return stat[stat.index(close, offsetBy: 2)...].split(separator: " ").first.map(String.init)
    }
}

/// Everything a process writes to a pipe, read as it comes on a thread of
/// its own, so a test can wait for a prompt.
final class Transcript: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    private let done = Mutex<Bool>(false)

    init(_ fd: FileDescriptor) {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd.rawValue, $0.baseAddress, 4096) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                bytes.withLock { $0 += buffer[0..<n] }
            }
            done.withLock { $0 = true }
        }
    }

    var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }

    /// The whole transcript, once the writer closed its end.
    func finished() async -> String {
        _ = await eventually { done.withLock { $0 } }
        return text
    }
}

import Foundation
import Glibc
@testable import JobObjects
import Testing

/// `jobsup run` end to end: the built binary inside a job of the test's own.
@Suite("jobsup run CLI")
struct JobsupCLITests {
    // MARK: bad input

    static let badFlags: [([String], String)] = [
        (["--memory-max", "12Q"], "invalid --memory-max \"12Q\": give bytes or a number with K, M, G or T"),
        (["--memory-high", "lots"], "invalid --memory-high"),
        (["--memory-low=-5M"], "invalid --memory-low"),
        (["--memory-min", "1X"], "invalid --memory-min"),
        (["--swap-max", "1..2G"], "invalid --swap-max"),
        (["--pids-max", "0"], "invalid --pids-max \"0\": give a whole number of at least 1"),
        (["--cpus=-1"], "invalid --cpus \"-1\": give a positive number of CPUs"),
        (["--cpus", "0.001"], "below the kernel's minimum of 1ms per period"),
        (["--cpu-percent", "150"], "invalid --cpu-percent \"150\": give a percentage of the whole machine"),
        (["--cpus", "1", "--cpu-percent", "5"], "--cpus and --cpu-percent both set the CPU cap; give one"),
        (["--cpus", "1", "--cpu-period", "5s"], "invalid --cpu-period \"5s\": give a duration from 1ms to 1s"),
        (["--cpu-period", "100ms"], "--cpu-period needs --cpus or --cpu-percent"),
        (["--cpu-weight", "0"], "invalid --cpu-weight \"0\": give a whole number from 1 to 10000"),
        (["--cpu-windows-weight", "10"], "invalid --cpu-windows-weight \"10\": give a whole number from 1 to 9"),
        (["--cpu-weight", "5", "--cpu-windows-weight", "5"], "give one"),
        (["--cpuset", "a-b"], "invalid --cpuset \"a-b\": give CPU numbers and ranges"),
        (["--cpuset-mems", "0-"], "invalid --cpuset-mems"),
        (["--io-max", "/dev/sda"], "invalid --io-max \"/dev/sda\": give DEVICE:KEY=VALUE"),
        (["--io-max", "/no/such/device:wbps=1M"], "device /no/such/device does not exist"),
        (["--io-max", "/dev/null:wbps=1M"], "/dev/null is not a block device"),
        (["--io-max", "8:0:xbps=1"], "unknown key \"xbps\""),
        (["--io-max", "8:0:wbps=0"], "wbps must be at least 1"),
        (["--io-max", "8:0:riops=fast"], "riops takes a whole number"),
        (["--io-weight", "20000"], "invalid --io-weight \"20000\""),
        (["--rlimit", "bogus=1"], "invalid --rlimit \"bogus=1\": give NAME=SOFT[:HARD] with NAME one of as, core, cpu"),
        (["--rlimit", "nofile=10:5"], "the soft limit is above the hard limit"),
        (["--rlimit", "as=lots"], "as is a size"),
        (["--rlimit", "nofile=1:2:3"], "give one value, or SOFT:HARD"),
        (["--cpu-time", "soon"], "invalid --cpu-time \"soon\": give a positive duration"),
        (["--cpu-time", "1s", "--cpu-time-action", "explode"], "invalid --cpu-time-action \"explode\": give terminate or notify"),
        (["--cpu-time-action", "notify"], "--cpu-time-action needs --cpu-time"),
        (["--grace", "soon"], "grace"),
        (["--name", "a/b"], "invalid job name \"a/b\""),
        (["--events", "xml"], "events"),
        (["--stats-format", "yaml"], "stats-format"),
        (["--no-such-flag"], "Unknown option '--no-such-flag'"),
        (["--rewrite-signal", "TERM"], "invalid --rewrite-signal \"TERM\": give FROM:TO"),
        (["--rewrite-signal", "TERM:NOPE"], "invalid --rewrite-signal \"TERM:NOPE\": give FROM:TO"),
        (["--rewrite-signal", "CHLD:TERM"], "jobsup does not catch SIGCHLD"),
        (["--rewrite-signal", "KILL:TERM"], "jobsup does not catch SIGKILL"),
        (["--rewrite-signal", "TERM:QUIT", "--rewrite-signal", "15:INT"], "names SIGTERM twice"),
        (["--success-exit", "256"], "invalid --success-exit \"256\": give an exit status from 0 to 255"),
        (["--success-exit=-1"], "invalid --success-exit \"-1\""),
        (["--parent-death-signal", "KILL"], "jobsup does not catch SIGKILL"),
        (["--parent-death-signal", "RTMIN+99"], "invalid --parent-death-signal \"RTMIN+99\""),
        (["--rewrite-signal", String(repeating: "x", count: 100_000)], "xxx…\": give FROM:TO"),
    ]

    @Test(arguments: badFlags)
    func badFlagSaysWhatIsWrongAndExits2(_ flags: [String], _ message: String) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run"] + flags + ["--", "sh", "-c", "echo ran"], in: job)
            #expect(result.status == .exited(code: 2), "\(flags): \(result.err)")
            #expect(result.err.contains(message), "\(flags): \(result.err)")
            #expect(!result.out.contains("ran"))
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test func noCommandIsAUsageError() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run", "--memory-max", "1G"], in: job)
            #expect(result.status == .exited(code: 2))
            #expect(result.err.contains("no command given"))
        }
    }

    /// A payload spec: each bad file says what and where, and exits 2.
    static let badFiles: [(String, String)] = [
        (
            "name: x\npayload: .\ncommand: [true]\nresorces: {}\n",
            "spec.yaml:4: resorces: unknown key \"resorces\" (did you mean \"resources\"?)"
        ),
        ("name: x\npayload: .\ncommand: [true]\nresources:\n  limits:\n    memory: lots\n", "memory"),
        ("name: x\npayload: .\n", "command"),
        ("name: [unclosed\n", "spec.yaml"),
        ("{\"name\": \"x\", \"payload\": \".\", \"command\": [\"true\"], \"extra\": 1}", "extra"),
    ]

    @Test(arguments: badFiles)
    func badFileSaysWhatIsWrongAndExits2(_ text: String, _ message: String) async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let path = fixture.write("spec.yaml", text)
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run", "-f", path], in: job)
            #expect(result.status == .exited(code: 2), "\(result.err)")
            #expect(result.err.contains(message), "\(result.err)")
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test func missingFileExits2() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run", "-f", "/no/such/job.yaml"], in: job)
            #expect(result.status == .exited(code: 2))
            #expect(result.err.contains("cannot read the payload spec /no/such/job.yaml"))
        }
    }

    @Test func rlimitWithAFileIsRejected() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run", "-f", "job.yaml", "--rlimit", "nofile=10"], in: job)
            #expect(result.status == .exited(code: 2))
            #expect(result.err.contains("--rlimit cannot be combined with -f"))
        }
    }

    /// What exists but cannot be run is 126 (a shell's code), what does
    /// not exist 127: a file without execute permission, a directory.
    @Test func cannotExecuteIs126() async throws {
        let directory = try TemporaryDirectory()
        let plain = directory.path + "/plain"
        #expect(FileManager.default.createFile(atPath: plain, contents: Data("echo hi\n".utf8), attributes: [.posixPermissions: 0o644]))
        try await withJobObject(name: uniqueJobName()) { job async throws in
            for (command, why) in [(plain, "is not executable"), (directory.path, "is a directory, not a program")] {
                let result = try await Jobsup.run(["run", "--", command], in: job)
                #expect(result.status == .exited(code: 126), "\(result.err)")
                #expect(result.err.contains(why), "\(result.err)")
            }
            #expect(try job.processIDs().isEmpty)
        }
    }

    // MARK: limits on a host without controllers

    static let controllerFlags: [([String], String)] = [
        (["--memory-max", "64M"], "memory"), (["--pids-max", "64"], "pids"), (["--cpus", "0.5"], "cpu"),
        (["--cpuset", "0"], "cpuset"), (["--io-weight", "50"], "io"),
    ]

    /// Where the host keeps the controller away (this hybrid host) the flag
    /// fails clearly and runs nothing; where it has it (the VM tier), the
    /// same flag works. Either way the test runs: a skip would hide one side.
    @Test(arguments: controllerFlags)
    func limitWithoutItsControllerFailsClearly(_ flags: [String], _ controller: String) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run"] + flags + ["--", "sh", "-c", "echo ran"], in: job)
            if Tier.has(controller) {
                #expect(result.status == .exited(code: 0), "\(result.err)")
                #expect(result.out.contains("ran"))
            } else {
                #expect(result.status == .exited(code: 125), "\(result.err)")
                #expect(result.err.contains("the \(controller) controller is not"), "\(result.err)")
                #expect(!result.out.contains("ran"))
            }
            #expect(try job.processIDs().isEmpty)
        }
    }

    /// Per-process limits and the CPU time budget need no controller.
    @Test func rlimitReachesThePayload() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(
                [
                    "run", "--rlimit", "nofile=100:200", "--rlimit", "core=0", "--",
                    "sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -c",
                ], in: job)
            #expect(result.status == .exited(code: 0), "\(result.err)")
            #expect(result.out.split(separator: "\n") == ["100", "200", "0"])
        }
    }

    @Test func cpuTimeBudgetTerminatesTheJob() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(
                ["run", "--cpu-time", "200ms", "--events", "json", "--", "sh", "-c", "while :; do :; done"], in: job)
            #expect(result.status == .exited(code: 137), "\(result.err)")
            let events = try Jobsup.jsonLines(result.err).compactMap { $0["event"] as? String }
            #expect(events.contains("cpu_time_budget_reached"))
            #expect(try job.processIDs().isEmpty)
        }
    }

    // MARK: JSON outputs

    @Test func statsJSONMatchesTheSchema() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(
                ["run", "--stats", "--stats-format", "json", "--", "sh", "-c", "(sleep 0 &); kill -USR1 $$"], in: job)
            #expect(result.status == .exited(code: 128 + SIGUSR1))
            let object = try Jobsup.jsonObject(try #require(result.err.split(separator: "\n").last))
            Jobsup.expectSchema(object, Jobsup.runStatsSchema)
            #expect(object["exit_status"] as? Int == Int(128 + SIGUSR1))
            #expect(object["signal"] as? Int == Int(SIGUSR1))
            #expect(object["processes_started"] as? Int == 1)
            #expect(object["abnormal_exits"] as? Int == 1)
        }
    }

    @Test func statsHumanShowsTheTable() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run", "--name", "humanstats", "--stats", "--", "true"], in: job)
            #expect(result.status == .exited(code: 0))
            #expect(result.err.contains("job humanstats: init exited with code 0"))
            #expect(result.err.contains("cpu user:"))
            #expect(result.err.contains("orphans reaped:"))
        }
    }

    static let eventSchemas: [String: [String: Jobsup.FieldType]] = [
        "subscribed": [
            "populated": .bool, "frozen": .bool, "processes_started": .int, "processes_exited": .int,
            "abnormal_exits": .int, "memory_limit_reached": .int, "out_of_memory_kills": .int,
            "memory_high_crossed": .int, "process_limit_reached": .int, "cpu_time_budget_reached": .bool,
            "descendants_tracked": .bool, "descendants_started": .int, "descendants_exited": .int,
            "descendant_event_losses": .int,
        ],
        "descendant_events_lost": [:],
        "descendant_started": ["pid": .int, "parent": .int],
        "descendant_exited": ["pid": .int, "exit_code": .intOrNull, "signal": .intOrNull, "status": .int],
        "process_started": ["pid": .int],
        "process_exited": ["pid": .int, "exit_code": .intOrNull, "signal": .intOrNull, "status": .int],
        "abnormal_exit": ["pid": .int, "exit_code": .intOrNull, "signal": .intOrNull, "status": .int],
        "active_process_zero": [:],
    ]

    @Test func eventsJSONFollowTheJob() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(
                ["run", "--name", "evjson", "--events", "json", "--", "sh", "-c", "sleep 0.05 & exit 3"], in: job)
            #expect(result.status == .exited(code: 3))
            let all = try Jobsup.jsonLines(result.err)
            // Descendants (the background sleep) are reported where the
            // host allows it (root); they are checked apart.
            let lines = all.filter { ($0["event"] as? String)?.hasPrefix("descendant_") == false }
            let names = lines.compactMap { $0["event"] as? String }
            #expect(names == ["subscribed", "process_started", "process_exited", "abnormal_exit", "active_process_zero"], "\(result.err)")
            // Unless the kernel dropped process events (a machine forking
            // faster than jobsup reads), which jobsup then says. Not in the
            // VM tier: there, under the whole suite's load, jobsup has been
            // seen to read one batch from the connector and no more, with no
            // loss reported (an open problem, in the notes); the
            // mechanism is checked in-process in both tiers
            // (DescendantTests).
            let descendants = all.compactMap { $0["event"] as? String }.filter { $0.hasPrefix("descendant_") }
            if lines.first?["descendants_tracked"] as? Bool == true, !descendants.contains("descendant_events_lost"), !Tier.isVM {
                #expect(descendants.sorted() == ["descendant_exited", "descendant_started"], "\(result.err)")
            }
            for line in all {
                let name = try #require(line["event"] as? String)
                let schema = try #require(Self.eventSchemas[name]).merging(["time": .string, "job": .string, "event": .string]) { a, _ in a
                }
                Jobsup.expectSchema(line, schema)
                #expect(line["job"] as? String == "evjson")
                let time = try #require(line["time"] as? String)
                #expect(time.hasSuffix("Z") && time.count == 24, "\(time)")
            }
            #expect(lines[1]["pid"] as? Int == lines[2]["pid"] as? Int)
            #expect(lines[2]["exit_code"] as? Int == 3 && lines[2]["status"] as? Int == 3)
        }
    }

    @Test func eventsGoToAFile() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let path = fixture.directory + "/events.jsonl"
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run", "--events-file", path, "--", "sh", "-c", "kill -KILL $$"], in: job)
            #expect(result.status == .exited(code: 137))
            #expect(result.err.isEmpty, "\(result.err)")
            let lines = try Jobsup.jsonLines(try String(contentsOfFile: path, encoding: .utf8))
            let exit = try #require(lines.first { $0["event"] as? String == "abnormal_exit" })
            #expect(exit["signal"] as? Int == Int(SIGKILL) && exit["status"] as? Int == 137)
        }
    }

    @Test func eventsHuman() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run", "--events", "human", "--", "true"], in: job)
            #expect(result.status == .exited(code: 0))
            #expect(result.err.contains("started") && result.err.contains("no process left in the job"), "\(result.err)")
        }
    }

    // MARK: init duties

    /// Orphans that exit are reaped at once: while init still runs, no
    /// zombie child of jobsup is left.
    @Test func zombiesAreReaped() async throws {
        let script = """
            import os, sys, time
            sup = os.getppid()
            for _ in range(5):
                if os.fork() == 0:
                    if os.fork() == 0:
                        os._exit(0)      # orphan: re-parented to jobsup, the subreaper
                    os._exit(0)
                os.wait()
            def zombies():
                n = 0
                for pid in os.listdir('/proc'):
                    if not pid.isdigit(): continue
                    try:
                        stat = open('/proc/%s/stat' % pid).read()
                    except OSError:
                        continue
                    fields = stat[stat.rindex(')') + 2:].split()
                    if fields[0] == 'Z' and int(fields[1]) == sup: n += 1
                return n
            deadline = time.time() + 10
            while zombies() and time.time() < deadline: time.sleep(0.01)
            print('zombies', zombies())
            """
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run", "--stats", "--stats-format", "json", "--", "python3", "-c", script], in: job)
            #expect(result.status == .exited(code: 0), "\(result.err)")
            #expect(result.out.contains("zombies 0"))
            let stats = try Jobsup.jsonObject(try #require(result.err.split(separator: "\n").last))
            #expect(stats["orphans_reaped"] as? Int == 5)
        }
    }

    /// A daemon init leaves is killed with the job and is then jobsup's
    /// child (the subreaper's): jobsup reaps it before it exits, or it would
    /// be a zombie of PID 1 — forever, where PID 1 does not reap.
    @Test func daemonsKilledWithTheJobAreReapedBeforeJobsupExits() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(
                [
                    "run", "--stats", "--stats-format", "json", "--grace", "100ms", "--", "sh", "-c",
                    "setsid sleep 600 & setsid sh -c 'trap \"\" TERM; exec sleep 600' & echo started",
                ], in: job)
            #expect(result.status == .exited(code: 0), "\(result.err)")
            let stats = try Jobsup.jsonObject(try #require(result.err.split(separator: "\n").last))
            #expect(stats["orphans_reaped"] as? Int == 2, "\(result.err)")
        }
    }

    @Test(arguments: [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])
    func eachSignalIsForwardedToInit(_ signal: Int32) async throws {
        let name = String(signalName(signal).dropFirst(3))
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try Jobsup.start(
                [
                    "run", "--", "sh", "-c",
                    "trap 'echo got-\(name); exit 0' \(name); echo ready; while :; do sleep 0.05; done",
                ], in: job)
            _ = await PipeReader.readUntil("ready", from: process.standardOutput!)
            try process.signal(Signal(signal))
            let result = await Jobsup.finish(process)
            #expect(result.out.contains("got-\(name)"))
            #expect(result.status == .exited(code: 0))
        }
    }

    /// With --signal-job every process gets it; without, only init. The
    /// child shrugs off the SIGTERM that follows init's exit, so only USR1
    /// can end it before the grace period is over.
    ///
    /// Each shell prints its ready line once its traps are set, and the
    /// signal is sent only after both lines. Both idle in `wait`, which a
    /// trapped signal interrupts at once (a `sleep` loop runs the trap only
    /// after the current sleep, which may be one forked after jobsup listed
    /// the job and so never signalled). The child catches TERM rather than
    /// ignoring it, so its `sleep` keeps the default action and ends on
    /// jobsup's SIGTERM. With --signal-job, init may exit before the child
    /// has run its trap; on a loaded, emulated VM that has taken far longer
    /// than a few seconds, so there the grace is a generous deadline
    /// (jobsup ends as soon as the child has gone). Without --signal-job the
    /// child is meant to outlive the grace, which is kept short.
    @Test(arguments: [true, false])
    func signalJobReachesEveryProcess(_ wholeJob: Bool) async throws {
        let script = """
            trap 'echo init-got-usr1; exit 0' USR1
            sh -c 'trap : TERM; trap "echo child-got-usr1; exit 0" USR1; echo child-ready; while :; do sleep 1000 & wait $!; done' &
            echo init-ready
            while :; do sleep 1000 & wait $!; done
            """
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let grace = wholeJob ? "60s" : "3s"
            let process = try Jobsup.start(
                ["run", "--grace", grace] + (wholeJob ? ["--signal-job"] : []) + ["--", "sh", "-c", script], in: job)
            let before = await PipeReader.readUntil("child-ready", from: process.standardOutput!)
            if !before.contains("init-ready") {
                _ = await PipeReader.readUntil("init-ready", from: process.standardOutput!)
            }
            try process.signal(.user1)
            let result = await Jobsup.finish(process)
            #expect(result.out.contains("init-got-usr1"), "\(result.out) \(result.err)")
            #expect(result.out.contains("child-got-usr1") == wholeJob, "\(result.out) \(result.err)")
            #expect(result.status == .exited(code: 0))
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test func sigkillOfJobsupKillsTheJob() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try Jobsup.start(["run", "--", "sh", "-c", "sh -c 'setsid sleep 1000 & echo ready; wait'"], in: job)
            _ = await PipeReader.readUntil("ready", from: process.standardOutput!)
            try process.signal(.kill)
            _ = await Jobsup.finish(process)
            // The watchdog kills the job and exits; nothing is left in ours.
            try await job.waitUntilEmpty()
            #expect(try job.processIDs().isEmpty)
        }
    }

    /// jobsup as PID 1 of a PID namespace: the payload sees it as its
    /// parent, orphans are reaped, `kill -TERM 1` is forwarded, and the
    /// status is init's.
    @Test func worksAsPID1() async throws {
        let script = """
            echo "ppid $PPID"
            (sleep 0 &) ; (sleep 0 &)
            trap 'echo got-term; exit 9' TERM
            kill -TERM 1
            while :; do sleep 0.05; done
            """
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try spawnPiped(
                job,
                [
                    "unshare", "--pid", "--fork", "--mount-proc", jobsupPath,
                    "run", "--", "sh", "-c", script,
                ], stderr: true)
            let result = await Jobsup.finish(process)
            #expect(result.status == .exited(code: 9), "\(result.err)")
            #expect(result.out.contains("ppid 1"))
            #expect(result.out.contains("got-term"))
            #expect(try job.processIDs().isEmpty)
        }
    }

    /// Interactive payloads: with a terminal on stdin, init becomes the
    /// terminal's foreground process group, and jobsup gets it back after.
    @Test(.enabled(if: access("/usr/bin/script", X_OK) == 0, "needs script(1) for a pseudo-terminal"))
    func initGetsTheTerminal() async throws {
        let check = "import os; print('fg', os.tcgetpgrp(0) == os.getpgrp() == os.getpid())"
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let inner =
                "\(jobsupPath) run -- python3 -c \"\(check)\"; echo status $?; python3 -c 'import os; print(\"back\", os.tcgetpgrp(0) == os.getpgrp())'"
            let process = try spawnPiped(job, ["script", "-qec", inner, "/dev/null"], stderr: true) {
                $0.standardInput = .null
            }
            let result = await Jobsup.finish(process)
            #expect(result.out.contains("fg True"), "\(result.out) \(result.err)")
            #expect(result.out.contains("status 0"))
            #expect(result.out.contains("back True"), "\(result.out)")
            #expect(try job.processIDs().isEmpty)
        }
    }

    // MARK: -f

    @Test(.enabled(if: PayloadTier.isRoot, "payloads need root"))
    func runsAPayloadSpecWithFlagsOverriding() async throws {
        let fixture = try PayloadFixture()
        defer { fixture.remove() }
        let spec = fixture.write(
            "job.yaml",
            """
            name: from-file
            payload: ./payload
            command: ["sh", "-c", "echo file-command; exit 4"]
            terminationGracePeriodSeconds: 1
            """)
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let plain = try await Jobsup.run(["run", "-f", spec, "--stats", "--stats-format", "json"], in: job)
            #expect(plain.status == .exited(code: 4), "\(plain.err)")
            #expect(plain.out.contains("file-command"))
            let stats = try Jobsup.jsonObject(try #require(plain.err.split(separator: "\n").last))
            #expect(stats["job"] as? String == "from-file")

            let overridden = try await Jobsup.run(
                [
                    "run", "-f", spec, "--name", "from-flags", "--grace", "100ms", "--events", "json", "--",
                    "sh", "-c", "echo sandbox $CONTAINER_SANDBOX_MOUNT_POINT; exit 6",
                ], in: job)
            #expect(overridden.status == .exited(code: 6), "\(overridden.err)")
            #expect(overridden.out.contains("sandbox /run/jobobjects/from-flags/sandbox"))
            let events = try Jobsup.jsonLines(overridden.err)
            #expect(events.first?["job"] as? String == "from-flags")
            #expect(try job.processIDs().isEmpty)
            #expect(access("/run/jobobjects/from-flags", F_OK) != 0)
        }
    }

    // MARK: limits for real (VM tier)

    @Test(.enabled(if: Tier.has("memory")))
    func memoryMaxKillsAHogAndSaysSo() async throws {
        let hog = "b = []\nwhile True: b.append(bytearray(8 << 20))"
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(
                [
                    "run", "--memory-max", "64M", "--swap-max", "0", "--events", "json", "--stats", "--stats-format", "json",
                    "--", "python3", "-c", hog,
                ], in: job)
            #expect(result.status == .exited(code: 137), "\(result.err)")
            let lines = try Jobsup.jsonLines(result.err)
            #expect(lines.contains { $0["event"] as? String == "out_of_memory_kill" }, "\(result.err)")
            let stats = try #require(lines.last)
            #expect((stats["out_of_memory_kills"] as? Int ?? 0) >= 1)
            #expect((stats["memory_peak_bytes"] as? Int ?? 0) > 32 << 20)
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test(.enabled(if: Tier.has("pids")))
    func pidsMaxRefusesForks() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let script = "for i in 1 2 3 4 5 6 7 8; do sleep 1000 & done 2>/dev/null; echo started; kill $(jobs -p) 2>/dev/null; exit 0"
            let result = try await Jobsup.run(["run", "--pids-max", "4", "--events", "json", "--", "sh", "-c", script], in: job)
            let lines = try Jobsup.jsonLines(result.err)
            #expect(lines.contains { $0["event"] as? String == "process_limit_reached" }, "\(result.err)")
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test(.enabled(if: Tier.has("cpu", "memory", "pids")))
    func everyLimitFlagReachesTheKernel() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            // jobsup, itself in `job`, makes its job in the default parent there.
            let name = uniqueJobName()
            let script =
                "d=\(job.path)/jobobjects/\(name); cat $d/memory.max $d/memory.high $d/memory.low $d/memory.oom.group $d/pids.max $d/cpu.max $d/cpu.weight"
            let result = try await Jobsup.run(
                [
                    "run", "--name", name, "--memory-max", "512M", "--memory-high", "256M", "--memory-low", "1M", "--oom-kill-group",
                    "--pids-max", "64", "--cpus", "1.5", "--cpu-period", "50ms", "--cpu-windows-weight", "6",
                    "--", "sh", "-c", script,
                ], in: job)
            #expect(result.status == .exited(code: 0), "\(result.err)")
            #expect(
                result.out.split(separator: "\n") == ["\(512 << 20)", "\(256 << 20)", "\(1 << 20)", "1", "64", "75000 50000", "200"],
                "\(result.out)")
        }
    }
}

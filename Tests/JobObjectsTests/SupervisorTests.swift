import Foundation
import Glibc
@testable import JobObjects
import Testing

/// End-to-end: the built jobsup binary, run inside a job of the test's own.
@Suite("jobsup run")
struct SupervisorTests {
    /// Runs jobsup with `arguments`; returns its status, stdout and stderr.
    func jobsup(_ arguments: [String], in job: JobObject) async throws -> (JobObjects.ExitStatus, String, String) {
        // jobsup's job nests inside ours (spawnPiped), so our job's
        // emptiness covers everything jobsup started.
        let process = try spawnPiped(job, [jobsupPath] + arguments, stderr: true)
        async let out = PipeReader.readAll(process.standardOutput!)
        async let err = PipeReader.readAll(process.standardError!)
        let result = (await process.wait(), await out, await err)
        try process.standardOutput!.close()
        try process.standardError!.close()
        return result
    }

    @Test(arguments: [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 143), ("kill -KILL $$", 137)])
    func propagatesInitsStatus(_ script: String, _ expected: Int32) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let (status, _, _) = try await jobsup(["run", "--", "sh", "-c", script], in: job)
            #expect(status == .exited(code: expected))
        }
    }

    /// jobsup's main thread runs the command and the library's monitor
    /// (CallingThreadExecutor): no monitor thread, no thread pool. With
    /// --events the job's event stream goes through the same monitor.
    @Test(arguments: [[], ["--events", "json"]])
    func runsOnOneThread(_ flags: [String]) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let (status, out, _) = try await jobsup(["run"] + flags + ["--", "sh", "-c", "ls /proc/$PPID/task"], in: job)
            #expect(status == .exited(code: 0))
            #expect(out.split(separator: "\n").count == 1, "jobsup's threads: \(out)")
        }
    }

    @Test func missingCommandIs127AndSays() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let (status, _, err) = try await jobsup(["run", "--", "no-such-command-xyz"], in: job)
            #expect(status == .exited(code: 127))
            #expect(err.contains("not found in PATH"))
        }
    }

    @Test func noCommandIsAUsageError() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let (status, _, err) = try await jobsup(["run"], in: job)
            #expect(status != .exited(code: 0))
            #expect(err.contains("no command given"))
        }
    }

    @Test func aDaemonDoesNotOutliveJobsup() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let (status, out, _) = try await jobsup(["run", "--grace", "100ms", "--", "sh", "-c", JobLifecycleTests.daemonizer], in: job)
            #expect(status == .exited(code: 0))
            // The daemon ran in jobsup's job, nested in ours: ours is empty.
            #expect(out.split(separator: "\n").first.flatMap { pid_t($0) } != nil)
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test func forwardsSignalsToInit() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try spawnPiped(
                job,
                [
                    jobsupPath, "run", "--", "sh", "-c",
                    "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
                ])
            _ = await PipeReader.readUntil("ready", from: process.standardOutput!)
            try process.signal(.terminate)
            let rest = await PipeReader.readAll(process.standardOutput!)
            try process.standardOutput!.close()
            #expect(rest.contains("got-term"))
            #expect(await process.wait() == .exited(code: 0))
        }
    }

    @Test func graceLetsATrappingProcessFinishAndKillsOneThatIgnores() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            // Init exits only once both children have set their traps (each
            // writes a line to a FIFO when ready), so the SIGTERM meets them.
            let fifo = "/tmp/jobobjects-grace-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            #expect(mkfifo(fifo, 0o600) == 0)
            defer { unlink(fifo) }
            // Each idles in `wait`, which a trapped signal interrupts at once
            // (dash runs a trap only after the command in progress, and a
            // sleep forked after jobsup listed the job is not signalled).
            let script = """
                sh -c 'trap "echo polite-exit; exit 0" TERM; echo ok > \(fifo); while :; do sleep 1000 & wait $!; done' &
                sh -c 'trap "" TERM; echo stubborn; echo ok > \(fifo); while :; do sleep 1000 & wait $!; done' &
                exec 3<> \(fifo); head -n 2 <&3 > /dev/null; exit 0
                """
            let (status, out, _) = try await jobsup(["run", "--grace", "5s", "--", "sh", "-c", script], in: job)
            #expect(status == .exited(code: 0))
            #expect(out.contains("polite-exit"), "\(out)")
            #expect(out.contains("stubborn"))
            // The stubborn one ignored SIGTERM; the grace ran out and it was killed.
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test func statsJSONParses() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let (status, _, err) = try await jobsup(["run", "--stats", "--stats-format", "json", "--", "sh", "-c", "exit 4"], in: job)
            #expect(status == .exited(code: 4))
            let line = try #require(err.split(separator: "\n").last)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["exit_status"] as? Int == 4)
            #expect(object["processes_started"] as? Int == 1)
            #expect(object["cpu_user_usec"] is Int)
        }
    }

    @Test func badGraceValueIsRejected() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let (status, _, err) = try await jobsup(["run", "--grace", "soon", "--", "true"], in: job)
            #expect(status != .exited(code: 0))
            #expect(err.contains("grace"))
        }
    }

    @Test func infoReportsTheHost() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let (status, out, _) = try await jobsup(["info"], in: job)
            #expect(status == .exited(code: 0))
            #expect(out.contains("cgroup2 mount:") && out.contains("spawn path:"))
        }
    }
}

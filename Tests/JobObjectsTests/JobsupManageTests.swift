import Foundation
import Glibc
@testable import JobObjects
import Testing

/// Managing a named job from other jobsup processes: list, stats, events,
/// signal, kill, freeze, thaw, exec, limits. The job is run by `jobsup run`
/// inside the test's own job, and so are the management commands, so they
/// find it under the same default parent.
@Suite("jobsup management commands")
struct JobsupManageTests {
    /// A `jobsup run --name` whose init prints "ready", echoes USR1 and
    /// otherwise idles; `body` gets its name and process.
    func withNamedJob(_ extra: [String] = [], _ body: (String, JobObject, ProcessHandle) async throws -> Void) async throws {
        let name = "m" + uniqueJobName().dropFirst(1)
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try Jobsup.start(
                ["run", "--name", name, "--grace", "100ms"] + extra + [
                    "--", "sh", "-c",
                    "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.05; done",
                ], in: job)
            _ = await PipeReader.readUntil("ready", from: process.standardOutput!)
            do {
                try await body(name, job, process)
            } catch {
                try? process.signal(.kill)
                _ = await Jobsup.finish(process)
                throw error
            }
            if process.exitStatus == nil { try? process.signal(.terminate) }
            _ = await Jobsup.finish(process)
            try await job.waitUntilEmpty()
        }
    }

    @Test func listShowsTheJob() async throws {
        try await withNamedJob { name, job, _ in
            let human = try await Jobsup.run(["list"], in: job)
            #expect(human.status == .exited(code: 0), "\(human.err)")
            let header = try #require(human.out.split(separator: "\n").first)
            #expect(header.split(separator: " ") == ["NAME", "STATE", "PROCESSES", "MEMORY", "CPU"])
            let row = try #require(human.out.split(separator: "\n").first { $0.hasPrefix(name + " ") })
            #expect(row.split(separator: " ")[1] == "running")

            let json = try await Jobsup.run(["list", "--format", "json"], in: job)
            let array = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
            let entry = try #require(array.first { $0["name"] as? String == name })
            Jobsup.expectSchema(
                entry,
                [
                    "name": .string, "state": .string, "processes": .int,
                    "memory_current_bytes": .intOrNull, "cpu_usec": .int,
                ])
            #expect(entry["state"] as? String == "running")
            #expect((entry["processes"] as? Int ?? 0) >= 1)
        }
    }

    @Test func statsOfANamedJob() async throws {
        try await withNamedJob { name, job, _ in
            let json = try await Jobsup.run(["stats", name, "--format", "json"], in: job)
            #expect(json.status == .exited(code: 0), "\(json.err)")
            let object = try Jobsup.jsonObject(Substring(json.out.trimmingCharacters(in: .whitespacesAndNewlines)))
            Jobsup.expectSchema(object, Jobsup.statsSchema)
            #expect(object["job"] as? String == name)
            #expect((object["active_processes"] as? Int ?? 0) >= 1)

            let human = try await Jobsup.run(["stats", name], in: job)
            #expect(human.out.hasPrefix("job \(name)"))
            #expect(human.out.contains("processes now:"))
        }
    }

    @Test func signalByNameAndNumber() async throws {
        try await withNamedJob { name, job, process in
            let byName = try await Jobsup.run(["signal", name, "usr1"], in: job)
            #expect(byName.status == .exited(code: 0), "\(byName.err)")
            #expect(byName.out.contains("SIGUSR1 sent to"))
            #expect(await PipeReader.readUntil("got-usr1", from: process.standardOutput!).isEmpty)
            let byNumber = try await Jobsup.run(["signal", name, "\(SIGTERM)"], in: job)
            #expect(byNumber.status == .exited(code: 0))
            #expect(await process.wait() == .exited(code: 128 + SIGTERM))
        }
    }

    @Test func killEndsTheJobAndItsJobsup() async throws {
        try await withNamedJob { name, job, process in
            let kill = try await Jobsup.run(["kill", name], in: job)
            #expect(kill.status == .exited(code: 0), "\(kill.err)")
            #expect(await process.wait() == .exited(code: 137))
            let list = try await Jobsup.run(["list"], in: job)
            #expect(!list.out.contains(name))
        }
    }

    @Test func freezeAndThaw() async throws {
        try await withNamedJob { name, job, process in
            #expect(try await Jobsup.run(["freeze", name], in: job).status == .exited(code: 0))
            let frozen = try await Jobsup.run(["list", "--format", "json"], in: job)
            #expect(frozen.out.contains("{\"name\":\"\(name)\",\"state\":\"frozen\""), "\(frozen.out)")
            // A frozen init cannot run its trap; once thawed it does.
            _ = try await Jobsup.run(["signal", name, "USR1"], in: job)
            #expect(try await Jobsup.run(["thaw", name], in: job).status == .exited(code: 0))
            #expect(await PipeReader.readUntil("got-usr1", from: process.standardOutput!).isEmpty)
            let thawed = try await Jobsup.run(["list", "--format", "json"], in: job)
            #expect(thawed.out.contains("{\"name\":\"\(name)\",\"state\":\"running\""), "\(thawed.out)")
        }
    }

    @Test func execRunsInsideTheJobAndReturnsItsStatus() async throws {
        try await withNamedJob { name, job, _ in
            let result = try await Jobsup.run(["exec", name, "--", "sh", "-c", "cat /proc/self/cgroup; exit 7"], in: job)
            #expect(result.status == .exited(code: 7), "\(result.err)")
            // At the root of a cgroup namespace of its own, made in the job.
            #expect(result.out.contains("0::/\n"), "\(result.out)")
            let missing = try await Jobsup.run(["exec", name, "--", "no-such-command-xyz"], in: job)
            #expect(missing.status == .exited(code: 127))
            let noCommand = try await Jobsup.run(["exec", name], in: job)
            #expect(noCommand.status == .exited(code: 2))
        }
    }

    @Test func eventsFollowsUntilTheJobIsEmpty() async throws {
        try await withNamedJob { name, job, process in
            let follower = try Jobsup.start(["events", name], in: job)
            let first = try #require(await Jobsup.readLine(follower.standardOutput!))
            let subscribed = try Jobsup.jsonObject(Substring(first))
            #expect(subscribed["event"] as? String == "subscribed" && subscribed["populated"] as? Bool == true, "\(first)")
            let frozen = try await Jobsup.run(["freeze", name], in: job)
            #expect(frozen.status == .exited(code: 0), "\(frozen.err)")
            let killed = try await Jobsup.run(["kill", name], in: job)
            #expect(killed.status == .exited(code: 0), "\(killed.err)")
            let rest = await Jobsup.finish(follower)
            #expect(rest.status == .exited(code: 0), "\(rest.err)")
            let events = try Jobsup.jsonLines(first + "\n" + rest.out).compactMap { $0["event"] as? String }
            #expect(events.contains("frozen"), "\(rest.out)")
            #expect(events.last == "active_process_zero", "\(rest.out)")
            #expect(await process.wait() == .exited(code: 137))
        }
    }

    @Test func limitsPrintsAndOnThisHostCannotSet() async throws {
        try await withNamedJob { name, job, _ in
            let shown = try await Jobsup.run(["limits", name, "--format", "json"], in: job)
            #expect(shown.status == .exited(code: 0), "\(shown.err)")
            let object = try Jobsup.jsonObject(Substring(shown.out.trimmingCharacters(in: .whitespacesAndNewlines)))
            #expect(object.keys.contains("memory_max") && object.keys.contains("pids_max") && object.keys.contains("io_max"))
            if !Tier.has("memory") {
                let set = try await Jobsup.run(["limits", name, "--memory-max", "64M"], in: job)
                #expect(set.status == .exited(code: 1), "\(set.err)")
                #expect(set.err.contains("the memory controller is not"), "\(set.err)")
            }
            let bad = try await Jobsup.run(["limits", name, "--memory-max", "lots"], in: job)
            #expect(bad.status == .exited(code: 2))
            #expect(bad.err.contains("invalid --memory-max"))
            let rlimit = try await Jobsup.run(["limits", name, "--rlimit", "nofile=5"], in: job)
            #expect(rlimit.status == .exited(code: 2))
        }
    }

    /// Live limits need the controllers (VM tier): the job started with a
    /// memory limit, which is then lowered and read back; a pids limit is added.
    @Test(.enabled(if: Tier.has("memory", "pids")))
    func limitsChangeLive() async throws {
        try await withNamedJob(["--memory-max", "512M"]) { name, job, _ in
            // The first jobsup moved into a supervisor leaf and gave our job's
            // children controllers, so our job can hold no more processes:
            // the management commands run from a sibling job.
            let parent = job.path.string + "/" + JobParent.defaultName
            try await withJobObject(name: uniqueJobName()) { manager async throws in
                let set = try await Jobsup.run(
                    ["limits", name, "--cgroup-parent", parent, "--memory-max", "256M", "--pids-max", "50", "--format", "json"], in: manager
                )
                #expect(set.status == .exited(code: 0), "\(set.err)")
                let object = try Jobsup.jsonObject(Substring(set.out.trimmingCharacters(in: .whitespacesAndNewlines)))
                #expect(object["memory_max"] as? Int == 256 << 20)
                #expect(object["pids_max"] as? Int == 50)
                let human = try await Jobsup.run(["limits", name, "--cgroup-parent", parent], in: manager)
                #expect(human.out.contains("memory.max: \(256 << 20)"), "\(human.out)")
            }
        }
    }

    @Test(arguments: [["stats"], ["events"], ["signal", "TERM"], ["kill"], ["freeze"], ["thaw"], ["limits"]])
    func anUnknownJobIsAFailedCommand(_ command: [String]) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            var arguments = command
            arguments.insert("no-such-job", at: 1)
            let result = try await Jobsup.run(arguments, in: job)
            #expect(result.status == .exited(code: 1), "\(result.err)")
            #expect(result.err.contains("no job named \"no-such-job\""), "\(result.err)")
        }
    }

    /// A name no job can have is bad input, exit 2, as it is for `run`.
    @Test(arguments: [["stats"], ["events"], ["signal", "TERM"], ["kill"], ["freeze"], ["thaw"], ["limits"]])
    func anInvalidNameIsAUsageError(_ command: [String]) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            for name in ["a/b", "..", "cpu.stat", String(repeating: "n", count: 300)] {
                var arguments = command
                arguments.insert(name, at: 1)
                let result = try await Jobsup.run(arguments, in: job)
                #expect(result.status == .exited(code: 2), "\(arguments): \(result.err)")
                #expect(result.err.contains("invalid job name"), "\(result.err)")
            }
        }
    }

    @Test func badSignalIsAUsageError() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["signal", "x", "SIGNOPE"], in: job)
            #expect(result.status == .exited(code: 2))
            #expect(result.err.contains("SIGNOPE"))
        }
    }

    @Test(arguments: ["run", "list", "stats", "events", "signal", "kill", "freeze", "thaw", "exec", "limits", "info"])
    func everySubcommandHasHelpWithExamples(_ command: String) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run([command, "--help"], in: job)
            #expect(result.status == .exited(code: 0))
            #expect(result.out.contains("USAGE: jobsup \(command)"))
            if command != "info" { #expect(result.out.contains("Example"), "\(command)") }
        }
    }
}

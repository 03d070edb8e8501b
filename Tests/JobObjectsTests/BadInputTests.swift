import Foundation
import Glibc
@testable import JobObjects
import JobObjectsPayload
import SystemPackage
import Testing

@Suite("bad input: a specific error and nothing left behind")
struct BadInputTests {
    @Test func aSecondJobOfTheSameNameIsRefusedAndTheFirstIsUntouched() async throws {
        let name = uniqueJobName()
        let first = try JobObject.create(name: name)
        let sleeper = try first.spawn("sleep", "1000")
        let error = #expect(throws: JobObjectError.self) { try JobObject.create(name: name) }
        #expect(error?.code == .jobExists)
        #expect(error?.message.contains("JobObject.open") == true)
        #expect(try first.processIDs() == [sleeper.pid])
        try await first.close()
        expectNothingLeft(path: first.path.string, processes: [sleeper])
    }

    @Test(arguments: ["", "..", "a/b", "x\ny"])
    func invalidNamesCreateNothing(_ name: String) throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: JobParent.resolve().hierarchy.mountPoint.string)
        let error = #expect(throws: JobObjectError.self) { try JobObject.create(name: name) }
        #expect(error?.code == .invalidJobName)
        let after = try FileManager.default.contentsOfDirectory(atPath: JobParent.resolve().hierarchy.mountPoint.string)
        // Tests running at the same time make and remove the shared default parent.
        #expect(Set(after).subtracting(before).subtracting([JobParent.defaultName]).isEmpty)
    }

    /// Every file the kernel puts in a cgroup (read from a real job's
    /// directory), and generated `<controller>.<file>` names, are refused
    /// as job names before anything is made, in the library, in `jobsup
    /// run` and in a spec.
    @Test func interfaceFileNamesAreRefusedUpFront() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let files = try FileManager.default.contentsOfDirectory(atPath: job.path.string)
            var random = SeededGenerator(seed: 18)
            let generated = JobName.reservedPrefixes.sorted().map { prefix in
                prefix + "." + String((0..<Int.random(in: 1...12, using: &random)).map { _ in "abcdefgh_.".randomElement(using: &random)! })
            }
            #expect(files.count > 5)
            for name in files + generated {
                let error = #expect(throws: JobObjectError.self, "\(name)") { try JobObject.create(name: name, parent: job.path) }
                #expect(error?.code == .invalidJobName, "\(name)")
                #expect(error?.message.contains("interface files") == true, "\(name): \(error?.message ?? "")")
                let spec = "name: \(name)\npayload: /tmp\ncommand: [/bin/true]\n"
                #expect(throws: JobObjectError.self, "spec name \(name)") { try PayloadSpec.decode(yaml: spec) }
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: job.path.string).sorted() == files.sorted())
            let result = try await Jobsup.run(["run", "--name", "cpu.stat", "--", "true"], in: job)
            #expect(result.status == .exited(code: 2) && result.err.contains("interface files"), "\(result.err)")
        }
    }

    /// Raising a hard resource limit above the caller's own needs
    /// CAP_SYS_RESOURCE: jobsup without it says so, with the most it can
    /// give, before the payload is spawned (125, not the payload's 126).
    @Test func raisingAHardLimitWithoutTheCapabilityIsSaidUpFront() async throws {
        var current = rlimit()
        #expect(getrlimit(__rlimit_resource_t(__RLIMIT_MSGQUEUE.rawValue), &current) == 0)
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let raised = "msgqueue=\(UInt64(current.rlim_max) + 1)"
            let result = try await Jobsup.run(["run", "--rlimit", raised, "--", "true"], in: job) {
                // Root, with every capability but CAP_SYS_RESOURCE.
                $0.capabilities = Set((0..<41).filter { $0 != 24 }.map { Capability(rawValue: Int32($0)) })
            }
            #expect(result.status == .exited(code: 125), "\(result.err)")
            #expect(
                result.err.contains("needs CAP_SYS_RESOURCE") && result.err.contains("give at most \(current.rlim_max)"), "\(result.err)")
            #expect(try job.processIDs().isEmpty)
        }
    }

    @Test func aParentWhoseParentIsMissingIsAClearError() throws {
        let parent = try JobParent.resolve().hierarchy.mountPoint.string + "/jobobjects-missing-\(getpid())/jobs"
        let error = #expect(throws: JobObjectError.self) { try JobObject.create(name: "x", parent: FilePath(parent)) }
        #expect(error?.code == .jobNotFound)
        #expect(error?.message.contains("does not exist") == true)
        let root = try JobParent.resolve().hierarchy.mountPoint.string
        #expect(access(root + "/jobobjects-missing-\(getpid())", F_OK) != 0)
    }

    /// A parent is a directory in the cgroup2 mount (or relative to this
    /// process's cgroup); any other absolute path is refused, naming the
    /// mount, and nothing is made for it anywhere.
    @Test(arguments: ["/tmp/x", "/proc", "/jobs", "/"])
    func aParentOutsideTheMountIsRefused(_ parent: String) throws {
        let mount = try JobParent.resolve().hierarchy.mountPoint.string
        guard !parent.hasPrefix(mount) else { return }
        let before = try FileManager.default.contentsOfDirectory(atPath: mount)
        let error = #expect(throws: JobObjectError.self) { try JobObject.create(name: uniqueJobName(), parent: FilePath(parent)) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("is not in the cgroup2 mount \(mount)") == true, "\(error?.message ?? "")")
        let after = try FileManager.default.contentsOfDirectory(atPath: mount)
        #expect(Set(after).subtracting(before).subtracting([JobParent.defaultName]).isEmpty)
    }

    /// Whatever a run makes for its job — the supervisor leaf it moves
    /// into, a parent it creates, controllers it enables — is gone when it
    /// ends, fails or is refused, and its home cgroup's subtree_control is
    /// as before. jobsup runs in the test's job, its home; on the hybrid
    /// host the limits are refused (no controllers), in the VM they apply.
    @Test func runsLeaveTheirHomeCgroupAsTheyFoundIt() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let directory = try TemporaryDirectory()
            let spec = directory.path + "/spec.yaml"
            let text = "name: \(uniqueJobName())\npayload: /tmp\ncommand: [/bin/true]\nresources: {limits: {memory: 64Mi}}\n"
            try Data((text + "securityContext: {runAsUser: no-such-user-\(getpid())}\n").utf8).write(to: URL(fileURLWithPath: spec))
            let runs: [[String]] = [
                ["--memory-max", "64M"], ["--pids-max", "64", "--cpus", "0.5"], ["--cgroup-parent", "made-by-run"],
                ["--cgroup-parent", "made-by-run", "--memory-max", "64M"], ["--memory-min", "2G", "--memory-max", "1G"],
                ["-f", spec], ["--cgroup-parent", "/tmp/x"],
            ]
            let controlsBefore = try FileContents.read(job.path.string + "/cgroup.subtree_control").get()
            for flags in runs {
                let result = try await Jobsup.run(["run"] + flags + (flags.first == "-f" ? [] : ["--", "true"]), in: job)
                #expect([0, 2, 125].contains(result.code), "\(flags): \(result.err)")
                let left = try FileManager.default.contentsOfDirectory(atPath: job.path.string).filter { !$0.contains(".") }
                #expect(left.isEmpty, "\(flags) left \(left): \(result.err)")
                #expect(try FileContents.read(job.path.string + "/cgroup.subtree_control").get() == controlsBefore, "\(flags)")
            }
        }
    }

    @Test func openingAMissingJobIsAClearError() {
        let error = #expect(throws: JobObjectError.self) { try JobObject.open(name: uniqueJobName()) }
        #expect(error?.code == .jobNotFound)
    }

    @Test func anUndelegatedParentNamesTheFix() async throws {
        // jobsup as user nobody, in a job of ours: the cgroup tree is root's.
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let jobsup = try await ExecutableCopy(of: jobsupPath, in: job)
            let process = try spawnPiped(job, [jobsup.path, "run", "--require-cgroup", "--", "true"], stderr: true) {
                $0.credentials = .init(uid: 65534, gid: 65534)
            }
            let err = await PipeReader.readAll(process.standardError!)
            try process.standardOutput!.close()
            try process.standardError!.close()
            #expect(await process.wait() == .exited(code: 125))
            #expect(err.contains("permission denied") && err.contains("Delegate=yes"), "\(err)")
        }
    }
}

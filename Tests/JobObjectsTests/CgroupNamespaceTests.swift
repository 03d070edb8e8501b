import Foundation
@testable import JobObjects
import Testing

/// Members start in a cgroup namespace rooted at their job: they see it as
/// `/`, and where the hierarchy is mounted with `nsdelegate` (the VM tier,
/// as systemd mounts it) even a root member cannot move out of the job.
@Suite("cgroup namespaces for members")
struct CgroupNamespaceTests {
    /// The member's own view of its cgroup, and the view with the option off.
    @Test(arguments: [true, false])
    func aMemberSeesItsJobAsTheRoot(_ namespace: Bool) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try spawnPiped(job, ["cat", "/proc/self/cgroup"]) { $0.cgroupNamespace = namespace }
            let output = await PipeReader.readAll(process.standardOutput!)
            try process.standardOutput!.close()
            #expect(await process.wait() == .exited(code: 0))
            let relative = try #require(job.parent.hierarchy.namespacePath(of: job.path.string))
            #expect(output.contains("0::\(namespace ? "/" : relative)\n"), "\(output)")
        }
    }

    /// A root member writes its pid into the hierarchy's root `cgroup.procs`
    /// (the VM's root cgroup holds processes, so nothing but the namespace
    /// stops the move). In its namespace the kernel refuses; without one the
    /// same write moves it out, which shows the test can fail.
    @Test(.enabled(if: Tier.isVM, "needs a cgroup2 mount with nsdelegate whose root is the test's own (the VM)"), arguments: [true, false])
    func aRootMemberCannotMoveOutOfItsJob(_ namespace: Bool) async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            #expect(job.parent.hierarchy.hasNamespaceDelegation)
            let root = job.parent.hierarchy.mountPoint.string
            let script = "echo $$ > \(root)/cgroup.procs && echo moved || echo refused; cat /proc/self/cgroup; exec sleep 1000"
            let process = try spawnPiped(job, ["sh", "-c", script]) { $0.cgroupNamespace = namespace }
            // Moved or not, the member then sees itself at its namespace's root.
            let lines = await PipeReader.readUntil("0::/", from: process.standardOutput!)
            if namespace {
                #expect(lines == ["refused"])
                #expect(try job.processIDs().contains(process.pid))
            } else {
                #expect(lines == ["moved"])
                #expect(try !job.processIDs().contains(process.pid))
            }
            try process.signal(.kill)
            _ = await process.wait()
            try process.standardOutput!.close()
        }
    }

    /// A member that uses JobObjects itself finds its own cgroup although its
    /// namespace hides the path: jobsup in a job reports the job as its own.
    @Test func aMemberFindsItsOwnCgroupThroughTheNamespace() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["info"], in: job)
            #expect(result.status == .exited(code: 0), "\(result.err)")
            #expect(result.out.contains("own cgroup:     \(job.path)\n"), "\(result.out)")
        }
    }

    /// The namespace's root is found as the directory so many levels below
    /// the mount whose cgroup lists the process; nothing else matches.
    @Test func theNamespaceRootIsTheCgroupThatListsTheProcess() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let process = try job.spawn("sleep", "100")
            let mount = job.parent.hierarchy.mountPoint.string
            let levels = job.path.string.dropFirst(mount.count).split(separator: "/").count
            #expect(CgroupHierarchy.namespaceRoot(levels: levels, relative: "/", mountPoint: mount, pid: process.pid) == job.cgroupPath)
            #expect(CgroupHierarchy.namespaceRoot(levels: levels + 1, relative: "/", mountPoint: mount, pid: process.pid) == nil)
            #expect(CgroupHierarchy.levelsAboveNamespace(mountRoot: "/../../..") == 3)
            for root in ["/", "/a", "/../a", "/a/.."] {
                #expect(CgroupHierarchy.levelsAboveNamespace(mountRoot: root) == nil, "\(root)")
            }
            try process.signal(.kill)
            _ = await process.wait()
        }
    }
}

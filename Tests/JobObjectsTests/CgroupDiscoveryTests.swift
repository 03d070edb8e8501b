import Foundation
@testable import JobObjects
import SystemPackage
import Testing

@Suite("cgroup discovery and job names")
struct CgroupDiscoveryTests {
    static let hybrid = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """

    @Test func findsTheHybridMount() throws {
        let h = try CgroupHierarchy.parse(mountinfo: Self.hybrid, procSelfCgroup: "4:memory:/x\n0::/user.slice/a.scope\n")
        #expect(h.mountPoint == "/sys/fs/cgroup/unified")
        #expect(h.ownCgroup == "/sys/fs/cgroup/unified/user.slice/a.scope")
        #expect(!h.isReadOnly)
    }

    @Test func findsAPureV2MountAndStripsANamespaceRoot() throws {
        let info = "30 23 0:26 /kubepods/pod1 /sys/fs/cgroup ro,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
        let h = try CgroupHierarchy.parse(mountinfo: info, procSelfCgroup: "0::/kubepods/pod1/app\n")
        #expect(h.mountPoint == "/sys/fs/cgroup")
        #expect(h.ownCgroup == "/sys/fs/cgroup/app")
        #expect(h.isReadOnly)
    }

    /// Both ways of probing and mountinfo agree on this host: pure v2 in
    /// the VM, hybrid on the host. statmount(2) is there from Linux 6.8 (the
    /// host's kernel); the VM's Debian kernel predates it, and there the
    /// probe must say so and leave it to the confirmation by cgroup.procs.
    @Test func probeAgreesWithMountinfo() throws {
        let cgroup = try #require(try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8))
        let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        let relative = try #require(CgroupHierarchy.ownRelativePath(procSelfCgroup: cgroup))
        let parsed = try CgroupHierarchy.parse(mountinfo: mountinfo, procSelfCgroup: cgroup)
        let described = CgroupHierarchy.described(mountPoints: CgroupHierarchy.usualMountPoints, relative: relative)
        if try kernelVersion() >= (6, 8) {
            #expect(described == .found(parsed))
        } else {
            #expect(described == .unavailable)
        }
        let confirmed = CgroupHierarchy.confirmed(
            mountPoints: CgroupHierarchy.usualMountPoints,
            relative: relative, pid: getpid())
        #expect(confirmed == parsed)
        #expect(CgroupHierarchy.probe(relative: relative) == parsed)
        #expect(try CgroupHierarchy.discover() == parsed)
    }

    /// Whatever the probe cannot confirm is left to mountinfo.
    @Test func probeRefusesWhatItCannotConfirm() async throws {
        let cgroup = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
        let relative = try #require(CgroupHierarchy.ownRelativePath(procSelfCgroup: cgroup))
        let hasStatmount = try kernelVersion() >= (6, 8)
        // Not cgroup2 at all, or not there (which needs no statmount to tell).
        for (places, described) in [
            (["/tmp", "/proc"], hasStatmount ? .notFound : .unavailable),
            (["/no/such/place"], CgroupHierarchy.Probed.notFound),
        ] {
            #expect(CgroupHierarchy.probe(mountPoints: places, relative: relative) == nil)
            #expect(CgroupHierarchy.described(mountPoints: places, relative: relative) == described)
            #expect(CgroupHierarchy.confirmed(mountPoints: places, relative: relative, pid: getpid()) == nil)
        }
        // On cgroup2, but a directory in the mount, not the mount: refused
        // by statmount's "not a mount root", and by the device check. The
        // job's parent seen as a mount point, with a process of the job as
        // the pid, passes every other step of the confirmation (its
        // cgroup.procs lists the process), so only the device check refuses.
        try await withJobObject(name: uniqueJobName()) { job in
            let member = try job.spawn("/bin/sleep", "1000")
            let parent = CgroupPath.parent(of: job.path.string)
            let name = "/" + CgroupPath.lastComponent(of: job.path.string)
            #expect(CgroupHierarchy.probe(mountPoints: [parent], relative: name) == nil)
            #expect(
                CgroupHierarchy.described(mountPoints: [parent], relative: name)
                    == (hasStatmount ? .notFound : .unavailable))
            #expect(CgroupHierarchy.confirmed(mountPoints: [parent], relative: name, pid: member.pid) == nil)
            // The control: from the real mount, the same process confirms.
            let mount = try CgroupHierarchy.discover().mountPoint.string
            let relative = String(job.path.string.dropFirst(mount.count))
            #expect(CgroupHierarchy.confirmed(mountPoints: [mount], relative: relative, pid: member.pid)?.ownCgroup == job.path)
        }
        // Without statmount, a cgroup that is not this process's (as a mount
        // showing only a subtree would give) fails the confirmation.
        let usual = CgroupHierarchy.usualMountPoints
        #expect(CgroupHierarchy.confirmed(mountPoints: usual, relative: relative + "/no-such-child", pid: getpid()) == nil)
        #expect(CgroupHierarchy.confirmed(mountPoints: usual, relative: relative, pid: 0) == nil)
        #expect(CgroupHierarchy.ownRelativePath(procSelfCgroup: "1:name=x:/a\n0::/b (deleted)\n") == "/b")
        #expect(CgroupHierarchy.ownRelativePath(procSelfCgroup: "1:name=x:/a\n") == nil)
        #expect(CgroupHierarchy.ownRelativePath(procSelfCgroup: "10::/v1\n0::/\n") == "/")
        #expect(CgroupHierarchy.ownRelativePath(procSelfCgroup: "0::/no/newline") == "/no/newline")
        #expect(CgroupHierarchy.ownRelativePath(procSelfCgroup: "\n\n0::/after/empty\n") == "/after/empty")
    }

    /// The probe's scan of cgroup.procs: whole numbers only, first and last
    /// lines too, with or without a final newline.
    @Test func cgroupProcsListsAPidOnlyAsAWholeNumber() {
        #expect(CgroupHierarchy.lists(42, "42\n"))
        #expect(CgroupHierarchy.lists(42, "1\n7\n42"))
        #expect(CgroupHierarchy.lists(7, "7\n42\n"))
        #expect(!CgroupHierarchy.lists(42, "142\n420\n4\n2\n"))
        #expect(!CgroupHierarchy.lists(42, ""))
        #expect(!CgroupHierarchy.lists(0, "\n"))
    }

    @Test func picksCgroup2LinesWhereverTheyAre() throws {
        // First line, last line without a newline, and never a "cgroup2"
        // that is not the type field.
        let first = "9 1 0:9 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n35 31 0:32 / /mnt/x\\040-\\040cgroup2 rw - tmpfs cgroup2 rw"
        #expect(Cgroup2Mount.lines(of: first).map { String($0) } == ["9 1 0:9 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw"])
        let last = "35 31 0:32 / /a rw - tmpfs t rw\n41 31 0:38 / /b ro - cgroup2 c rw"
        #expect(Cgroup2Mount.lines(of: last).map { String($0) } == ["41 31 0:38 / /b ro - cgroup2 c rw"])
        let both = try CgroupHierarchy.parse(mountinfo: last + "\n" + first, procSelfCgroup: "0::/s\n")
        #expect(both.mountPoint == "/sys/fs/cgroup/unified" && both.ownCgroup == "/sys/fs/cgroup/unified/s")
        #expect(Cgroup2Mount.lines(of: "").isEmpty && Cgroup2Mount.lines(of: " - cgroup2").isEmpty)
    }

    @Test func unescapesMountPoints() throws {
        let info = "30 23 0:26 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n"
        let h = try CgroupHierarchy.parse(mountinfo: info, procSelfCgroup: "0::/\n")
        #expect(h.mountPoint == "/mnt/my cgroup")
        #expect(h.ownCgroup == "/mnt/my cgroup")
    }

    @Test func aSupervisorLeafDelegatesFromTheCgroupAboveIt() throws {
        let h = try CgroupHierarchy.parse(mountinfo: Self.hybrid, procSelfCgroup: "0::/svc/supervisor\n")
        #expect(h.ownCgroup == "/sys/fs/cgroup/unified/svc/supervisor")
        #expect(h.delegationRoot == "/sys/fs/cgroup/unified/svc")
        let plain = try CgroupHierarchy.parse(mountinfo: Self.hybrid, procSelfCgroup: "0::/svc\n")
        #expect(plain.delegationRoot == plain.ownCgroup)
    }

    /// How far up controllers may be enabled for a job parent (a plain
    /// directory tree stands in for the cgroup2 mount).
    @Test func controllersAreEnabledFromTheDelegatedCgroupOfTheParent() throws {
        let mount = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(uniqueJobName())").path
        defer { try? FileManager.default.removeItem(atPath: mount) }
        for directory in ["shell", "svc/supervisor", "svc/jobobjects", "other/jobobjects"] {
            try FileManager.default.createDirectory(atPath: mount + "/" + directory, withIntermediateDirectories: true)
        }
        func bound(_ parent: String, own: String) -> String {
            let hierarchy = CgroupHierarchy(mountPoint: FilePath(mount), ownCgroup: FilePath(mount + own), isReadOnly: false)
            return ControllerDelegation.bound(for: JobParent(cgroupPath: mount + parent, hierarchy: hierarchy, isDefault: false))
        }
        // Below the caller's own cgroup: from there (from the cgroup above
        // its supervisor leaf).
        #expect(bound("/svc/jobobjects", own: "/svc/supervisor") == mount + "/svc")
        #expect(bound("/shell/jobobjects", own: "/shell") == mount + "/shell")
        // Another jobsup's parent, from a shell elsewhere: from that jobsup's cgroup.
        #expect(bound("/svc/jobobjects", own: "/shell") == mount + "/svc")
        // A parent outside, with no supervisor above it: the parent alone.
        #expect(bound("/other/jobobjects", own: "/shell") == mount + "/other/jobobjects")
    }

    @Test func noCgroup2IsAClearError() {
        let error = #expect(throws: JobObjectError.self) {
            try CgroupHierarchy.parse(mountinfo: "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n", procSelfCgroup: "0::/\n")
        }
        #expect(error?.code == .cgroup2NotMounted)
        #expect(error?.message.contains("mount -t cgroup2") == true)
    }

    @Test func readOnlyHierarchyIsRefusedBeforeAnythingIsCreated() throws {
        let h = try CgroupHierarchy.parse(mountinfo: "1 0 0:1 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n", procSelfCgroup: "0::/\n")
        let parent = JobParent(cgroupPath: "/sys/fs/cgroup/never-created", hierarchy: h, isDefault: false)
        let error = #expect(throws: JobObjectError.self) { try parent.prepare() }
        #expect(error?.code == .parentNotWritable)
        #expect(error?.message.contains("read-only") == true)
    }

    @Test func discoversThisHost() throws {
        let h = try CgroupHierarchy.discover()
        #expect(h.ownCgroup.string.hasPrefix(h.mountPoint.string))
        let report = try JobParent.resolve().report()
        #expect(report.description.contains("spawn path"))
    }

    /// "a\r\nb": CR LF is one Character, which a check by Character for
    /// "\n" or "\r" misses.
    @Test(arguments: ["", ".", "..", "a/b", "/", "a\nb", "a\rb", "a\r\nb", "nul\0x", String(repeating: "x", count: 256), "cgroup.procs"])
    func invalidJobNamesAreRejected(_ name: String) {
        let error = #expect(throws: JobObjectError.self) { try JobName(name) }
        #expect(error?.code == .invalidJobName)
    }

    @Test(arguments: ["build-42", "a", String(repeating: "x", count: 255), "with space", "ünïcode"])
    func validJobNamesAreAccepted(_ name: String) throws {
        #expect(try JobName(name).value == name)
    }

    @Test func generatedNamesAreValidAndDistinct() throws {
        let names = Set((0..<100).map { _ in JobName.generate().value })
        #expect(names.count == 100)
        for name in names {
            #expect(try JobName(name).value == name)
            #expect(name.utf8.count == 20 && name.hasPrefix("job-"), "\(name)")
            #expect(name.dropFirst(4).allSatisfy { "0123456789abcdef".contains($0) }, "\(name)")
        }
        // Every digit position takes every value over many names (no digit stuck).
        let digitsSeen = (4..<20).map { position in Set(names.map { Array($0.utf8)[position] }).count }
        #expect(digitsSeen.allSatisfy { $0 > 8 }, "\(digitsSeen)")
    }

    @Test func parentResolution() throws {
        let h = try CgroupHierarchy.discover()
        #expect(try JobParent.resolve(FilePath(h.mountPoint.string + "/a")).path.string == h.mountPoint.string + "/a")
        #expect(try JobParent.resolve("rel").path.string == CgroupPath.join(h.ownCgroup.string, "rel"))
        #expect(throws: JobObjectError.self) { try JobParent.resolve(FilePath(h.mountPoint.string + "/a/../b")) }
        // Outside the mount: refused, not re-rooted at the top of the hierarchy.
        #expect(throws: JobObjectError.self) { try JobParent.resolve("/a/b") }
    }
}

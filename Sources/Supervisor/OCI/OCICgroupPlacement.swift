import Glibc
import JobObjects

/// Where a container's job goes: `linux.cgroupsPath` inside the cgroup2
/// mount (absolute or relative, both from the mount's root, as runc's
/// cgroupfs driver reads them), or `jobsup-runc/ID` when the config has
/// none. The levels above the job that do not exist yet are made by
/// create and removed again by delete.
struct OCICgroupPlacement {
    /// The job's parent directory, and the job's name in it.
    let parent: String
    let name: String

    init(cgroupsPath: String?, id: String) throws(OCIRuntimeError) {
        let mount: String
        do {
            mount = try CgroupHierarchy.discover().mountPoint.string
        } catch {
            throw OCIRuntimeError(error.message)
        }
        let given = cgroupsPath ?? "/jobsup-runc/\(id)"
        if given.contains(":") {
            throw OCIRuntimeError(
                "linux.cgroupsPath \"\(given.prefix(200))\" is systemd's slice:prefix:name form, which needs --systemd-cgroup (containerd: SystemdCgroup = true; podman: --cgroup-manager systemd), or give a cgroupfs path"
            )
        }
        let levels = given.split(separator: "/").map(String.init)
        guard let last = levels.last, !levels.contains(where: { $0 == "." || $0 == ".." }), !given.contains("\n") else {
            throw OCIRuntimeError("linux.cgroupsPath \"\(given.prefix(200))\" must be a path of cgroup names, without . or ..")
        }
        parent = ([mount] + levels.dropLast()).joined(separator: "/")
        name = last
    }

    /// The mark create leaves on a level it made (an extended attribute, as
    /// systemd marks delegated cgroups), so that whichever container's
    /// delete empties the level last removes it, not only the one that made it.
    static let madeMark = "trusted.jobsup-runc.made"

    /// Makes each missing level above the job, outermost first, and marks
    /// it; returns those it made.
    func makeParentLevels() throws(OCIRuntimeError) -> [String] {
        var missing: [String] = []
        var path = parent
        while access(path, F_OK) != 0, path.contains("/") {
            missing.insert(path, at: 0)
            path = String(path[..<path.lastIndex(of: "/")!])
        }
        var made: [String] = []
        for level in missing {
            guard mkdir(level, 0o755) == 0 || errno == EEXIST else {
                let reason = String(cString: strerror(errno))
                removeLevels(made)
                throw OCIRuntimeError("cannot create the cgroup \(level): \(reason)")
            }
            made.append(level)
            _ = Syscall.setAttribute(level, Self.madeMark, "1")
        }
        return made
    }

    /// Removes the levels above `job` that a create made, innermost first,
    /// while they are empty.
    static func removeEmptyMadeLevels(above job: String) {
        var level = job
        while let slash = level.lastIndex(of: "/") {
            level = String(level[..<slash])
            guard Syscall.attribute(level, madeMark) == "1", rmdir(level) == 0 else { return }
        }
    }

    /// Removes levels made for a job, innermost first; one that another
    /// container uses by now is not empty and stays.
    func removeLevels(_ levels: [String]) {
        for level in levels.reversed() { _ = rmdir(level) }
    }

    static func inode(_ path: String) -> UInt64? {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }
}

import Glibc

extension CgroupHierarchy {
    /// How many levels the root of the caller's cgroup namespace lies below
    /// the root of a mount, when the mount was made outside the namespace:
    /// the kernel then shows the mount's root as `/..` once per level (a
    /// member of a job that JobObjects spawned sees the host's mount so).
    /// nil for any other root.
    static func levelsAboveNamespace(mountRoot: String) -> Int? {
        let components = mountRoot.split(separator: "/")
        guard !components.isEmpty, components.allSatisfy({ $0 == ".." }) else { return nil }
        return components.count
    }

    /// The most cgroup directories looked at to find the namespace's root.
    static let namespaceSearchLimit = 100_000

    /// The root of the caller's cgroup namespace as a directory of the mount
    /// at `mountPoint`, when it lies `levels` below the mount's root. The
    /// kernel names neither the root nor the levels, so the root is found
    /// as the directory `levels` down whose `relative` cgroup (the caller's,
    /// as its namespace names it) lists `pid` in its `cgroup.procs`: a
    /// process is a member of exactly one cgroup.
    static func namespaceRoot(
        levels: Int, relative: String, mountPoint: String, pid: pid_t = getpid()
    ) -> String? {
        var candidates = [mountPoint]
        var looked = 0
        for _ in 0..<levels {
            var below: [String] = []
            for directory in candidates {
                guard case .success(let names) = Syscall.listDirectory(directory, directoriesOnly: true) else { continue }
                looked += names.count
                if looked > namespaceSearchLimit { return nil }
                below += names.map { CgroupPath.join(directory, $0) }
            }
            candidates = below
        }
        return candidates.first { root in
            guard case .success(let members) = FileContents.read(CgroupPath.join(root, relative) + "/cgroup.procs") else { return false }
            return lists(pid, members)
        }
    }
}

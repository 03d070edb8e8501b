import Glibc

extension JobParent {
    /// The names of the jobs under this parent: its child cgroups, sorted.
    /// Lists the parent directory; an absent parent has no jobs.
    public func jobNames() -> [String] {
        guard case .success(let names) = Syscall.listDirectory(cgroupPath) else { return [] }
        return names.filter { name in
            var info = stat()
            return stat(cgroupPath + "/" + name, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        }.sorted()
    }
}

import Glibc

extension ResourceLimit {
    /// Checks what the kernel would refuse, or what means nothing, before a
    /// process is made: a soft limit above the hard one, an open-file count
    /// above `fs.nr_open` (refused even to root), a real-time priority above
    /// 99 or a nice ceiling above 40 (setrlimit(2) takes them, no process
    /// can use them). Raising a hard limit above the caller's own still
    /// needs CAP_SYS_RESOURCE: that is the system's answer, at spawn.
    package func validate() throws(JobObjectError) {
        let name = Self.name(of: resource)
        func reject(_ why: String) -> JobObjectError {
            JobObjectError(.invalidArgument, "the \(name) resource limit \(why)", operation: "validate resource limit")
        }
        guard (0..<Int32(__RLIMIT_NLIMITS.rawValue)).contains(resource) else {
            throw JobObjectError(
                .invalidArgument, "no resource limit numbered \(resource): RLIMIT_* numbers are 0...\(__RLIMIT_NLIMITS.rawValue - 1)",
                operation: "validate resource limit")
        }
        if soft > hard { throw reject("has a soft value (\(soft)) above its hard one (\(hard)); give SOFT:HARD with SOFT ≤ HARD") }
        switch UInt32(resource) {
        case RLIMIT_NOFILE.rawValue:
            let ceiling = Self.openFilesCeiling
            if hard > ceiling {
                let shown = hard == Self.unlimited ? "cannot be unlimited" : "cannot be \(hard)"
                throw reject(
                    "\(shown): the kernel's ceiling is fs.nr_open (\(ceiling)), even for root; give at most \(ceiling) or raise /proc/sys/fs/nr_open"
                )
            }
        case __RLIMIT_RTPRIO.rawValue:
            if hard != Self.unlimited && hard > 99 { throw reject("is a real-time priority, 0...99 (or unlimited); got \(hard)") }
        case __RLIMIT_NICE.rawValue:
            if hard != Self.unlimited && hard > 40 {
                throw reject("is a nice ceiling, 0...40 (40 allows nice -20; or unlimited); got \(hard)")
            }
        default:
            break
        }
    }

    /// Checks that this process may set the limit: raising a hard limit
    /// above its own needs CAP_SYS_RESOURCE (setrlimit(2)), which a
    /// container's root often lacks. Said before anything is spawned, with
    /// the most that can be given, rather than as EPERM from the child.
    package func checkPermitted() throws(JobObjectError) {
        var current = rlimit()
        guard getrlimit(__rlimit_resource_t(UInt32(resource)), &current) == 0, hard > UInt64(current.rlim_max) else { return }
        guard !EffectiveCapabilities.contains(EffectiveCapabilities.sysResource) else { return }
        let most = UInt64(current.rlim_max) == Self.unlimited ? "unlimited" : String(current.rlim_max)
        throw JobObjectError(
            .systemCallFailed,
            "raising the \(Self.name(of: resource)) hard limit above this process's own (\(most)) needs CAP_SYS_RESOURCE, which it does not have; give at most \(most)",
            operation: "set resource limit", errno: .notPermitted)
    }

    /// The kernel's ceiling for RLIMIT_NOFILE (fs.nr_open; 1048576 unless
    /// changed), read once: a spawn with an open-file limit checks it, and
    /// spawns do no file I/O of their own.
    static let openFilesCeiling: UInt64 = {
        guard case .success(let text) = FileContents.read("/proc/sys/fs/nr_open"), let value = UInt64(text.trimmingWhitespace) else {
            return 1 << 20
        }
        return value
    }()

    /// The name jobsup's `--rlimit` uses for `resource` ("nofile").
    static func name(of resource: Int32) -> String {
        ResourceLimitName(resource: resource)?.rawValue ?? "RLIMIT #\(resource)"
    }
}

import CJobShim
import Glibc
import SystemPackage

/// Turns `SpawnOptions` into the C shim's configuration and calls it.
///
/// Everything that allocates (PATH lookup, argv/envp, pipes, /dev/null)
/// happens here, in the parent, before clone; the child only makes syscalls.
enum Spawner {
    static func spawn(
        _ options: SpawnOptions, cgroupFD: CInt, cgroupProcsFD: CInt, path requested: SpawnPath
    ) throws(JobObjectError)
        -> ProcessHandle
    {
        // Only a forked child can wait at its start gate while this returns.
        let path = options.startGate == nil ? requested : requested.forked
        // nil: the child gets `environ` itself (no copy of it per spawn).
        let environment = environmentList(options.environment)
        let searchPath =
            environment.map { list in list.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } }
            ?? getenv("PATH").map { String(cString: $0) }
        let executable: String
        if let namespace = options.mountNamespace {
            executable = try resolve(
                options.executable, in: namespace, searchPath: searchPath,
                workingDirectory: options.workingDirectory?.string)
        } else {
            executable = try ExecutableLookup.resolve(
                options.executable, searchPath: searchPath,
                workingDirectory: options.workingDirectory?.string)
        }
        if let cwd = options.workingDirectory?.string {
            let seen = options.mountNamespace?.callerPath(of: cwd) ?? cwd
            if !isDirectory(seen) {
                throw JobObjectError(
                    .invalidArgument, "working directory \(cwd) does not exist or is not a directory", operation: "spawn", path: cwd)
            }
        }
        let mounts = try PreparedMounts(options.mountNamespace?.joining == nil ? options.mountNamespace : nil)
        if mounts.count > Int(JOBSHIM_MAX_MOUNTS) {
            throw JobObjectError(.invalidArgument, "at most \(JOBSHIM_MAX_MOUNTS) mounts can be made for one process", operation: "spawn")
        }
        let seccompProgram = options.seccompFilter?.program ?? []
        for limit in options.resourceLimits {
            try limit.validate()
            try limit.checkPermitted()
        }

        var opened = OpenedDescriptors()
        defer { opened.closeChildEnds() }
        var sources: [CInt] = [-1, -1, -1]
        do {
            sources[0] = try opened.source(for: options.standardInput, childFD: 0)
            sources[1] = try opened.source(for: options.standardOutput, childFD: 1)
            sources[2] = try opened.source(for: options.standardError, childFD: 2)
        } catch {
            opened.closeParentEnds()
            throw error
        }
        for (childFD, fd) in options.extraDescriptors.sorted(by: { $0.key < $1.key }) {
            guard childFD >= 3, childFD < JOBSHIM_MAX_FDS else {
                opened.closeParentEnds()
                throw JobObjectError(
                    .invalidArgument, "extra descriptor \(childFD) must be between 3 and \(JOBSHIM_MAX_FDS - 1)", operation: "spawn")
            }
            while sources.count <= Int(childFD) { sources.append(-1) }
            sources[Int(childFD)] = fd.rawValue
        }

        let argv = [options.argument0 ?? options.executable] + options.arguments
        let rlimits = options.resourceLimits.map { jobshim_rlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) }
        let groups = options.credentials?.supplementaryGroups ?? []
        let capabilityMask = options.capabilities.map { $0.reduce(UInt64(0)) { $0 | (1 << UInt64($1.rawValue)) } }

        var result = jobshim_spawn_result()
        let status: CInt = withCStrings(argv) { argvPointer in
            withEnvironment(environment) { envpPointer in
                executable.withCString { pathPointer in
                    withOptionalCString(options.workingDirectory?.string) { cwdPointer in
                        sources.withUnsafeBufferPointer { sourcePointer in
                            rlimits.withUnsafeBufferPointer { rlimitPointer in
                                groups.withUnsafeBufferPointer { groupPointer in
                                    var config = jobshim_spawn_config()
                                    config.path = pathPointer
                                    config.argv = argvPointer
                                    config.envp = envpPointer
                                    config.cwd = cwdPointer
                                    config.cgroup_fd = cgroupFD
                                    config.cgroup_procs_fd = cgroupProcsFD
                                    config.fd_sources = sourcePointer.baseAddress
                                    config.fd_count = CInt(sourcePointer.count)
                                    config.session =
                                        switch options.processGroup {
                                        case .inherit: 0
                                        case .newProcessGroup: 1
                                        case .newSession: 2
                                        case .newSessionWithTerminal: 3
                                        }
                                    config.new_cgroup_namespace = options.cgroupNamespace && SpawnOptions.cgroupNamespaceAvailable ? 1 : 0
                                    config.reset_signal_mask = options.resetSignalMask ? 1 : 0
                                    config.blocked_signals = options.blockedSignals.reduce(0) { mask, signal in
                                        (1...64).contains(signal) ? mask | (UInt64(1) << UInt64(signal - 1)) : mask
                                    }
                                    config.rlimits = rlimitPointer.baseAddress
                                    config.rlimit_count = CInt(rlimitPointer.count)
                                    config.set_groups = options.credentials?.supplementaryGroups == nil ? 0 : 1
                                    config.groups = groupPointer.baseAddress
                                    config.group_count = CInt(groupPointer.count)
                                    config.gid = options.credentials.map { Int64($0.gid) } ?? -1
                                    config.uid = options.credentials.map { Int64($0.uid) } ?? -1
                                    config.set_caps = capabilityMask == nil ? 0 : 1
                                    config.cap_keep = capabilityMask ?? 0
                                    config.no_new_privs = options.noNewPrivileges ? 1 : 0
                                    if let gate = options.startGate {
                                        config.has_start_gate = 1
                                        config.start_gate_fd = gate.rawValue
                                    }
                                    return seccompProgram.withUnsafeBytes { programPointer in
                                        mounts.entries.withUnsafeBufferPointer { mountPointer in
                                            if options.seccompFilter != nil {
                                                config.seccomp_program = programPointer.baseAddress
                                                config.seccomp_program_count = UInt32(programPointer.count / SeccompFilter.instructionSize)
                                            }
                                            if let joined = options.mountNamespace?.joining {
                                                config.join_mount_namespace = 1
                                                config.mount_namespace_fd = joined.rawValue
                                            } else if let namespace = options.mountNamespace {
                                                config.new_mount_namespace = 1
                                                config.root_propagation =
                                                    switch namespace.propagation {
                                                    case .slave: jobshim_ms_slave() | jobshim_ms_rec()
                                                    case .private: jobshim_ms_private() | jobshim_ms_rec()
                                                    case .unchanged: 0
                                                    }
                                            }
                                            config.mounts = mountPointer.baseAddress
                                            config.mount_count = CInt(mountPointer.count)
                                            return withExtendedLifetime(mounts) {
                                                jobshim_spawn(&config, path.shimValue, &result)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if status != 0 {
            opened.closeParentEnds()
            throw failure(stage: result.stage, errno: Errno(rawValue: result.error), executable: executable, options: options)
        }
        do {
            return try ProcessHandle(
                pid: result.pid, pidfd: result.pidfd, reaps: true, spawnPath: path,
                standardInput: opened.parentEnds[0], standardOutput: opened.parentEnds[1],
                standardError: opened.parentEnds[2])
        } catch {
            // Only epoll registration can fail here; do not leave the child unowned.
            _ = Syscall.pidfdSendSignal(result.pidfd, SIGKILL)
            _ = Syscall.waitPidfd(result.pidfd, options: 0)
            Syscall.close(result.pidfd)
            opened.closeParentEnds()
            throw error
        }
    }

    /// A spawn error that says which step failed and what to do.
    static func failure(stage: CInt, errno: Errno, executable: String, options: SpawnOptions) -> JobObjectError {
        let op = "spawn \(executable)"
        switch Int(stage) {
        case Int(JOBSHIM_STAGE_EXEC):
            if errno == .noSuchFileOrDirectory {
                return JobObjectError(
                    .executableNotFound, "\(executable) or its interpreter/loader does not exist", operation: op, path: executable,
                    errno: errno)
            }
            if errno == .execFormatError {
                return JobObjectError(
                    .spawnFailed, "\(executable) is not in an executable format (a script needs a #! line)", operation: op,
                    path: executable, errno: errno)
            }
            return JobObjectError(.spawnFailed, "execve of \(executable) failed", operation: op, path: executable, errno: errno)
        case Int(JOBSHIM_STAGE_CHDIR):
            return JobObjectError(
                .spawnFailed, "cannot enter working directory \(options.workingDirectory?.string ?? "")", operation: op,
                path: options.workingDirectory?.string, errno: errno)
        case Int(JOBSHIM_STAGE_CLONE):
            if errno == .resourceBusy || errno == .notSupported {
                return JobObjectError(
                    .spawnFailed,
                    "the kernel refused to create a process in the job's cgroup (a cgroup whose children use domain controllers cannot hold processes)",
                    operation: op, errno: errno)
            }
            if errno == .resourceTemporarilyUnavailable {
                return JobObjectError(
                    .spawnFailed, "the job's process limit (pids.max) or the system's refused a new process", operation: op, errno: errno)
            }
            if errno == .noSuchFileOrDirectory { return outsideNamespace(op) }
            return JobObjectError(.spawnFailed, "cannot create the child process", operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_CGROUP_JOIN) where errno == .noSuchFileOrDirectory:
            return outsideNamespace(op)
        case Int(JOBSHIM_STAGE_CGROUP_JOIN):
            return JobObjectError(.spawnFailed, "the child could not join the job (write to cgroup.procs)", operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_UID), Int(JOBSHIM_STAGE_GID), Int(JOBSHIM_STAGE_GROUPS):
            return JobObjectError(
                .spawnFailed, "cannot switch to the requested user or groups (needs CAP_SETUID/CAP_SETGID)", operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_CAPS), Int(JOBSHIM_STAGE_CAPS_BOUNDING):
            return JobObjectError(
                .spawnFailed, "cannot set the requested capabilities (the caller must hold them, and CAP_SETPCAP)", operation: op,
                errno: errno)
        case Int(JOBSHIM_STAGE_RLIMIT):
            return JobObjectError(
                .spawnFailed, "cannot apply a resource limit (raising a hard limit needs CAP_SYS_RESOURCE)", operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_SECCOMP):
            if errno == .permissionDenied {
                return JobObjectError(
                    .spawnFailed,
                    "cannot load the seccomp filter: without CAP_SYS_ADMIN the kernel requires no_new_privs (set noNewPrivileges)",
                    operation: op, errno: errno)
            }
            return JobObjectError(.spawnFailed, "cannot load the seccomp filter", operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_NO_NEW_PRIVS):
            return JobObjectError(.spawnFailed, "cannot set no_new_privs", operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_MOUNT_NAMESPACE) where options.mountNamespace?.joining != nil:
            return JobObjectError(
                .spawnFailed, "cannot enter the mount namespace given to join (setns(2) needs CAP_SYS_ADMIN and CAP_SYS_CHROOT)",
                operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_MOUNT_NAMESPACE):
            return JobObjectError(
                .spawnFailed, "cannot create a mount namespace for the child (unshare(CLONE_NEWNS) needs CAP_SYS_ADMIN)", operation: op,
                errno: errno)
        case Int(JOBSHIM_STAGE_CGROUP_NAMESPACE):
            return JobObjectError(
                .spawnFailed,
                "cannot give the child a cgroup namespace rooted at its job (set cgroupNamespace to false to run without one)",
                operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_CONTROLLING_TERMINAL):
            return JobObjectError(
                .spawnFailed,
                "cannot make standard input the child's controlling terminal (newSessionWithTerminal needs a terminal there, such as a pty's slave end, that no other session holds)",
                operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_MOUNT_PROPAGATION):
            return JobObjectError(
                .spawnFailed, "cannot set the mount propagation of / in the child's namespace", operation: op, errno: errno)
        case Int(JOBSHIM_STAGE_MOUNT)..<Int(JOBSHIM_STAGE_MOUNT) + Int(JOBSHIM_MAX_MOUNTS):
            let mount = options.mountNamespace?.mounts[safe: Int(stage) - Int(JOBSHIM_STAGE_MOUNT)]
            return JobObjectError(
                .spawnFailed,
                "cannot bind \(mount?.source ?? "?") at \(mount?.target ?? "?") in the child's mount namespace (the source and the mount point must both exist)",
                operation: op, path: mount?.target.string, errno: errno)
        case Int(JOBSHIM_STAGE_MOUNT_READ_ONLY)..<Int(JOBSHIM_STAGE_MOUNT_READ_ONLY) + Int(JOBSHIM_MAX_MOUNTS):
            let mount = options.mountNamespace?.mounts[safe: Int(stage) - Int(JOBSHIM_STAGE_MOUNT_READ_ONLY)]
            return JobObjectError(
                .spawnFailed, "cannot make the mount at \(mount?.target ?? "?") read-only", operation: op, path: mount?.target.string,
                errno: errno)
        default:
            return JobObjectError(.spawnFailed, "the child failed before exec (step \(stage))", operation: op, errno: errno)
        }
    }

    /// ENOENT from a move into the job: under cgroup2's `nsdelegate`, a
    /// process in a cgroup namespace (a member of another job, say) may only
    /// move processes between cgroups inside it.
    private static func outsideNamespace(_ op: String) -> JobObjectError {
        JobObjectError(
            .spawnFailed,
            "the kernel refused to put the child in the job: the job lies outside this process's cgroup namespace, and cgroup2 is mounted with nsdelegate; make the job under this process's own cgroup (the default job parent) instead",
            operation: op, errno: .noSuchFileOrDirectory)
    }

    /// Finds `name` as the child will see it in its mount namespace: the
    /// same rules as `ExecutableLookup`, checked where each path is found in
    /// the caller's namespace, and returned as the child's path.
    private static func resolve(
        _ name: String, in namespace: SpawnOptions.MountNamespace, searchPath: String?,
        workingDirectory: String?
    ) throws(JobObjectError) -> String {
        if name.isEmpty {
            throw JobObjectError(.executableNotFound, "no executable given", operation: "spawn")
        }
        if name.contains("/") {
            let path = (name.hasPrefix("/") || workingDirectory == nil) ? name : workingDirectory! + "/" + name
            if ExecutableLookup.isExecutableFile(namespace.callerPath(of: path)) { return path }
            throw JobObjectError(
                .executableNotFound,
                "no executable file \(path) in the job's mount namespace (looked at \(namespace.callerPath(of: path)))",
                operation: "spawn", path: path)
        }
        let search = searchPath ?? ExecutableLookup.defaultSearchPath
        for directory in search.split(separator: ":", omittingEmptySubsequences: false) {
            let path = (directory.isEmpty ? (workingDirectory ?? ".") : String(directory)) + "/" + name
            if ExecutableLookup.isExecutableFile(namespace.callerPath(of: path)) { return path }
        }
        throw JobObjectError(
            .executableNotFound,
            "\"\(name)\" was not found in PATH (\(search)) of the job's mount namespace; give a full path or install it",
            operation: "spawn")
    }

    /// The child's environment as a list; nil for `.inherit`.
    private static func environmentList(_ environment: SpawnOptions.Environment) -> [String]? {
        switch environment {
        case .custom(let values):
            return values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        case .inherit:
            return nil
        case .inheritUpdating(let updates):
            var list = currentEnvironment().filter { entry in
                let key = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
                return updates[key] == nil
            }
            for (key, value) in updates.sorted(by: { $0.key < $1.key }) {
                if let value { list.append("\(key)=\(value)") }
            }
            return list
        }
    }

    static func currentEnvironment() -> [String] {
        var list: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            list.append(String(cString: entry))
            pointer += 1
        }
        return list
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}

/// The C mounts of a `MountNamespace`, with their strings kept alive until
/// the spawn returns. The flags a read-only remount must keep are read from
/// each source here, in the parent.
private final class PreparedMounts {
    private(set) var entries: [jobshim_mount] = []
    private var strings: [UnsafeMutablePointer<CChar>] = []

    var count: Int { entries.count }

    init(_ namespace: SpawnOptions.MountNamespace?) throws(JobObjectError) {
        for mount in namespace?.mounts ?? [] {
            var keep: UInt = 0
            let source = mount.source.string
            if mount.readOnly, jobshim_mount_flags_of(source, &keep) != 0 {
                let errno = Errno(rawValue: Glibc.errno)
                throw JobObjectError(
                    .invalidArgument, "cannot bind \(source): it cannot be read", operation: "spawn", path: source, errno: errno)
            }
            var entry = jobshim_mount()
            entry.source = UnsafePointer(keepString(source))
            entry.target = UnsafePointer(keepString(mount.target.string))
            entry.fstype = nil
            entry.flags = jobshim_ms_bind() | (mount.recursive ? jobshim_ms_rec() : 0)
            entry.data = nil
            entry.read_only = mount.readOnly ? 1 : 0
            entry.keep_flags = keep
            entries.append(entry)
        }
    }

    private func keepString(_ string: String) -> UnsafeMutablePointer<CChar> {
        let copy = strdup(string)!
        strings.append(copy)
        return copy
    }

    deinit { for string in strings { free(string) } }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// Descriptors opened for one spawn: the child's ends are closed after the
/// spawn, the parent's ends go to the caller.
private struct OpenedDescriptors {
    var childEnds: [CInt] = []
    var parentEnds: [FileDescriptor?] = [nil, nil, nil]

    mutating func source(for io: SpawnOptions.StandardIO, childFD: Int) throws(JobObjectError) -> CInt {
        switch io {
        case .inherit:
            return -1
        case .null:
            let fd = try Syscall.open("/dev/null", O_RDWR).orThrow("spawn", path: "/dev/null", what: "open")
            childEnds.append(fd)
            return fd
        case .fileDescriptor(let fd):
            return fd.rawValue
        case .pipe:
            let (read, write) = try Syscall.pipe().orThrow("spawn", what: "create a pipe")
            let (child, parent) = childFD == 0 ? (read, write) : (write, read)
            childEnds.append(child)
            parentEnds[childFD] = FileDescriptor(rawValue: parent)
            return child
        }
    }

    func closeChildEnds() { childEnds.forEach(Syscall.close) }
    func closeParentEnds() { parentEnds.compactMap { $0?.rawValue }.forEach(Syscall.close) }
}

/// `strings` as a NULL-terminated C array for the duration of `body`.
package func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// The child's envp: `strings` as C strings, or this process's `environ` as
/// it is when nil (what posix_spawn is given for an inherited environment).
private func withEnvironment<R>(_ strings: [String]?, _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    guard let strings else { return body(UnsafePointer(environ)) }
    return withCStrings(strings, body)
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}

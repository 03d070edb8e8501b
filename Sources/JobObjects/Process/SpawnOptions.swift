import Glibc
import SystemPackage

/// What to run and how: everything a spawn needs, as a `Sendable` value.
///
/// ```swift
/// var options = SpawnOptions("make", arguments: ["-j8"])
/// options.workingDirectory = "/src/project"
/// options.standardOutput = .pipe
/// let process = try job.spawn(options)
/// ```
public struct SpawnOptions: Sendable {
    /// A path, or a name looked up in `PATH` (of `environment`, else of this process).
    public var executable: String
    /// Arguments after argv[0].
    public var arguments: [String]
    /// argv[0]; defaults to `executable` as given.
    public var argument0: String?
    /// The environment the child starts with.
    public var environment: Environment = .inherit
    /// nil: inherit the caller's.
    public var workingDirectory: FilePath?
    /// Descriptor 0 of the child.
    public var standardInput: StandardIO = .inherit
    /// Descriptor 1 of the child.
    public var standardOutput: StandardIO = .inherit
    /// Descriptor 2 of the child.
    public var standardError: StandardIO = .inherit
    /// Further descriptors for the child: child fd → caller fd (3 and up).
    /// Every descriptor not named here or above is closed in the child.
    public var extraDescriptors: [Int32: FileDescriptor] = [:]
    /// The child's process group or session.
    public var processGroup: ProcessGroup = .inherit
    /// Start with exactly `blockedSignals` blocked (default: none), rather
    /// than with the caller's thread's mask. Caught signals always go back
    /// to their default action; ignored ones stay ignored, as execve keeps them.
    public var resetSignalMask = true
    /// The signals blocked in the child when it starts, with
    /// `resetSignalMask`: a supervisor that unblocks signals for itself
    /// passes on the mask it was started with, as tini does.
    public var blockedSignals: Set<Int32> = []
    /// Per-process limits (setrlimit) applied in the child before exec.
    public var resourceLimits: [ResourceLimit] = []
    /// Run as this user, group and supplementary groups (numbers; resolve names first).
    public var credentials: Credentials?
    /// Keep exactly these capabilities (bounding, permitted, inheritable,
    /// ambient); nil leaves capabilities as execve gives them.
    public var capabilities: Set<Capability>?
    /// Start in a new cgroup namespace whose root is the job. The process
    /// sees the job as `/` in `/proc/self/cgroup`, and on a cgroup2 mount
    /// with `nsdelegate` (systemd's default) it cannot move itself or
    /// another process out of the job, even as root: the kernel refuses a
    /// migration to a cgroup outside the namespace. Without `nsdelegate`, or
    /// for a process that keeps CAP_SYS_ADMIN (it can `setns` back into the
    /// host's namespace), this only hides the host's cgroup paths.
    ///
    /// Where the kernel has cgroup namespaces (Linux 4.6) and the caller
    /// holds CAP_SYS_ADMIN, which making one needs. An unprivileged caller's
    /// members stay in its namespace and can move to any cgroup its user may
    /// write to (the job's siblings in its delegated cgroup). false: always
    /// the caller's cgroup namespace.
    public var cgroupNamespace = true

    /// Whether `cgroupNamespace` can be honoured: the kernel has cgroup
    /// namespaces and this thread holds CAP_SYS_ADMIN (one capget(2)).
    static var cgroupNamespaceAvailable: Bool {
        KernelFeatures.current.cgroupNamespace && EffectiveCapabilities.contains(EffectiveCapabilities.sysAdmin)
    }
    /// Set `no_new_privs` before exec.
    public var noNewPrivileges = false
    /// Run in a new mount namespace with these mounts, made by the child
    /// before it changes identity; nil: the caller's mount namespace.
    public var mountNamespace: MountNamespace?
    /// A seccomp filter (classic BPF, built in the caller) that the child
    /// loads just before `execve`. Without CAP_SYS_ADMIN after the identity
    /// switch the kernel requires `noNewPrivileges` for it.
    public var seccompFilter: SeccompFilter?
    /// Hold the process at a gate before `execve`: it joins the job and
    /// takes its identity, mounts and working directory, then `spawn`
    /// returns while it waits to read one byte from this descriptor; with
    /// the byte it execs. It holds every descriptor the caller had when it
    /// was forked (the write end of a pipe too), so end of file cannot be
    /// relied on: a process that must not run is killed. This is
    /// an OCI runtime's `create` then `start`: the pid is the payload's
    /// already, in its job, before it runs a single instruction of its own.
    /// A gated process is always forked (`SpawnPath.forked`: born inside
    /// the job where the kernel can); the descriptor is closed in it before
    /// exec.
    public var startGate: FileDescriptor?

    /// Runs `executable` (a path, or a name looked up in `PATH`) with `arguments`; everything else is inherited.
    public init(_ executable: String, arguments: [String] = []) {
        self.executable = executable
        self.arguments = arguments
    }

    /// The child's environment.
    public enum Environment: Sendable {
        /// This process's environment.
        case inherit
        /// This process's environment with these variables set (nil removes one).
        case inheritUpdating([String: String?])
        /// Exactly these variables.
        case custom([String: String])
    }

    /// What one of the child's standard descriptors is.
    public enum StandardIO: Sendable {
        /// The caller's descriptor of the same number.
        case inherit
        /// /dev/null.
        case null
        /// This descriptor (the caller keeps ownership).
        case fileDescriptor(FileDescriptor)
        /// A new pipe; the caller's end is on the returned `ProcessHandle`.
        case pipe
    }

    /// Where the child stands in process groups and sessions.
    public enum ProcessGroup: Sendable {
        case inherit
        /// `setpgid(0, 0)`: a new process group led by the child.
        case newProcessGroup
        /// `setsid()`: a new session (and process group) without a terminal.
        case newSession
        /// `setsid()`, and standard input (a terminal: a pty's slave end)
        /// becomes the new session's controlling terminal (`TIOCSCTTY`), as
        /// for a login shell: the child gets job control, and `SIGHUP` when
        /// the terminal hangs up.
        case newSessionWithTerminal
    }

    /// A private mount namespace for the child (`unshare(CLONE_NEWNS)`), or
    /// one that another member already set up (`joining`).
    ///
    /// The namespace belongs to the job's processes alone: when the last of
    /// them exits the kernel drops it and unmounts everything in it, whatever
    /// happened to the caller. The mount points must exist.
    ///
    /// ```swift
    /// // A second process in the namespace of the job's first, `first`:
    /// let namespace = try FileDescriptor.open("/proc/\(first.pid)/ns/mnt", .readOnly)
    /// options.mountNamespace = .joining(namespace, mounted: mountsOfTheFirst)
    /// ```
    public struct MountNamespace: Sendable, Hashable {
        /// How mounts of the caller's namespace reach the child's, set on `/`
        /// recursively before the mounts are made.
        public enum Propagation: Sendable, Hashable {
            /// `MS_SLAVE`: host mounts and unmounts show up in the job, the
            /// job's own never reach the host (the default).
            case slave
            /// `MS_PRIVATE`: nothing passes either way.
            case `private`
            /// Leave the propagation as the copy got it.
            case unchanged
        }

        /// How mounts propagate between the host and the new namespace.
        public var propagation: Propagation
        /// Made in order, so a later mount may sit inside an earlier one.
        public var mounts: [BindMount]
        /// nil: a new namespace. A descriptor of a namespace (a process's
        /// `/proc/PID/ns/mnt`, open in the caller until `spawn` returns): the
        /// child enters it with setns(2) instead. `mounts` then say what is
        /// already mounted there, so that the executable and working
        /// directory can be checked before the spawn; none is made again,
        /// and `propagation` is left as it is.
        public var joining: FileDescriptor?

        /// A new mount namespace that receives the host's mounts (`.slave`) and has `mounts` added.
        public init(propagation: Propagation = .slave, mounts: [BindMount] = []) {
            self.propagation = propagation
            self.mounts = mounts
        }

        /// The namespace `descriptor` names, where `mounted` are already made.
        public static func joining(_ descriptor: FileDescriptor, mounted: [BindMount]) -> MountNamespace {
            var namespace = MountNamespace(propagation: .unchanged, mounts: mounted)
            namespace.joining = descriptor
            return namespace
        }

        /// Where `path`, as the child will see it, is found in the caller's
        /// namespace: under the innermost mount whose target holds it, in its
        /// source. Used to check executables and directories before the spawn.
        public func callerPath(of path: FilePath) -> FilePath {
            FilePath(callerPath(of: path.string))
        }

        func callerPath(of path: String) -> String {
            for mount in mounts.reversed() {
                let target = mount.target.string
                let source = mount.source.string
                if path == target { return source }
                let prefix = target.hasSuffix("/") ? target : target + "/"
                if path.hasPrefix(prefix) { return source + "/" + path.dropFirst(prefix.count) }
            }
            return path
        }
    }

    /// A bind mount of `source` (in the caller's namespace) at `target`.
    public struct BindMount: Sendable, Hashable {
        /// The host path bound in.
        public var source: FilePath
        /// Where it appears in the child's namespace.
        public var target: FilePath
        /// Made read-only (the whole tree when recursive).
        public var readOnly: Bool
        /// `MS_REC`: bring the mounts below `source` along.
        public var recursive: Bool

        /// A bind mount of `source` at `target`, with the mounts below `source` unless `recursive` is false.
        public init(source: FilePath, target: FilePath, readOnly: Bool, recursive: Bool = true) {
            self.source = source
            self.target = target
            self.readOnly = readOnly
            self.recursive = recursive
        }
    }

    /// The user and groups a child runs as, by number.
    public struct Credentials: Sendable, Hashable {
        /// Real, effective and saved user id.
        public var uid: uid_t
        /// Real, effective and saved group id.
        public var gid: gid_t
        /// nil: leave the supplementary groups alone; [] clears them.
        public var supplementaryGroups: [gid_t]?
        /// `uid` and `gid`, with `supplementaryGroups` (nil keeps the caller's).
        public init(uid: uid_t, gid: gid_t, supplementaryGroups: [gid_t]? = []) {
            self.uid = uid
            self.gid = gid
            self.supplementaryGroups = supplementaryGroups
        }
    }
}

/// A Linux capability by number (`CAP_NET_BIND_SERVICE` is 10).
public struct Capability: Sendable, Hashable, RawRepresentable {
    /// The capability's number (linux/capability.h).
    public var rawValue: Int32
    /// The capability numbered `rawValue`.
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// `CAP_NET_BIND_SERVICE`: bind ports below 1024.
    public static let netBindService = Capability(rawValue: 10)
    /// `CAP_SYS_ADMIN`: mounts, namespaces (`setns` back out of the job's cgroup namespace) and much else.
    public static let sysAdmin = Capability(rawValue: 21)
}

/// One setrlimit(2) limit, applied in the child before exec.
public struct ResourceLimit: Sendable, Hashable {
    /// The `RLIMIT_*` resource.
    public var resource: Int32
    /// The soft limit, which the process may raise up to `hard`.
    public var soft: UInt64
    /// The hard limit (`RLIM_INFINITY` for none).
    public var hard: UInt64

    /// A limit on `resource`.
    public init(resource: Int32, soft: UInt64, hard: UInt64) {
        self.resource = resource
        self.soft = soft
        self.hard = hard
    }

    /// `RLIM_INFINITY`.
    public static let unlimited = UInt64.max

    /// RLIMIT_AS: address space in bytes.
    public static func addressSpace(_ bytes: UInt64) -> ResourceLimit {
        ResourceLimit(resource: Int32(RLIMIT_AS.rawValue), soft: bytes, hard: bytes)
    }
    /// RLIMIT_CPU: CPU seconds (SIGXCPU at the soft limit, SIGKILL at the hard one).
    public static func cpuSeconds(_ seconds: UInt64) -> ResourceLimit {
        ResourceLimit(resource: Int32(RLIMIT_CPU.rawValue), soft: seconds, hard: seconds)
    }
    /// RLIMIT_NOFILE: open descriptors.
    public static func openFiles(_ count: UInt64) -> ResourceLimit {
        ResourceLimit(resource: Int32(RLIMIT_NOFILE.rawValue), soft: count, hard: count)
    }
    /// RLIMIT_CORE: core file size in bytes.
    public static func coreSize(_ bytes: UInt64) -> ResourceLimit {
        ResourceLimit(resource: Int32(RLIMIT_CORE.rawValue), soft: bytes, hard: bytes)
    }
}

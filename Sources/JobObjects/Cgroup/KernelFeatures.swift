import CJobShim
import Glibc

/// What the running kernel offers, probed once per process without
/// creating any process.
public struct KernelFeatures: Sendable, Equatable, CustomStringConvertible {
    /// `clone3` exists and is not filtered (container seccomp profiles often return ENOSYS).
    public let clone3: Bool
    /// `clone3` accepts `CLONE_INTO_CGROUP` (Linux 5.7): children are born inside their job.
    public let cloneIntoCgroup: Bool
    /// `waitid` accepts `P_PIDFD` (Linux 5.4).
    public let waitidPidfd: Bool
    /// Cgroup namespaces exist (Linux 4.6), so members can be rooted at their job.
    public let cgroupNamespace: Bool
    /// This build has the clone3 spawn path: it needs a few instructions
    /// written for each architecture (x86_64 and aarch64 have them).
    public let clone3PathCompiled: Bool

    /// The spawn path the library uses, best first: clone3 into the job
    /// where the kernel and this build both have it, else clone and join.
    /// (A fork copies the parent's page tables, so it is chosen only for a
    /// child that waits at a start gate: `forked`.)
    public var spawnPath: SpawnPath {
        if clone3PathCompiled && clone3 && cloneIntoCgroup { return .clone3IntoCgroup }
        return .cloneThenJoin
    }

    /// The features of the running kernel.
    public static let current = KernelFeatures(
        clone3: jobshim_probe_clone3() == 1,
        cloneIntoCgroup: jobshim_probe_clone_into_cgroup() == 1,
        waitidPidfd: jobshim_probe_waitid_pidfd() == 1,
        cgroupNamespace: access("/proc/self/ns/cgroup", F_OK) == 0,
        clone3PathCompiled: jobshim_spawn_path_compiled(CInt(JOBSHIM_PATH_CLONE3_INTO_CGROUP)) == 1)

    public var description: String {
        "clone3=\(clone3) CLONE_INTO_CGROUP=\(cloneIntoCgroup) waitid(P_PIDFD)=\(waitidPidfd) cgroupns=\(cgroupNamespace)"
            + " clone3-path-compiled=\(clone3PathCompiled) spawn=\(spawnPath)"
    }
}

/// How a child is created and put into its job.
public enum SpawnPath: Sendable, Equatable, CustomStringConvertible {
    /// `clone3(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|CLONE_INTO_CGROUP)`: never outside the job.
    case clone3IntoCgroup
    /// `clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD)`; the child writes itself into
    /// `cgroup.procs` before it runs any payload code.
    case cloneThenJoin
    /// `fork`; the child joins as above and the parent opens a pidfd.
    case forkThenJoin
    /// `clone3(CLONE_PIDFD|CLONE_INTO_CGROUP)` without `CLONE_VM`: a fork
    /// born inside the job, for a child that waits at a start gate.
    case forkIntoCgroup

    /// The child is created inside its job (`CLONE_INTO_CGROUP`); on the
    /// other paths it writes itself into `cgroup.procs`.
    public var isBornInsideJob: Bool { self == .clone3IntoCgroup || self == .forkIntoCgroup }

    /// The path for a child that waits at a start gate: it must be forked
    /// (the caller returns while it waits), born inside the job where this
    /// path was.
    public var forked: SpawnPath { isBornInsideJob ? .forkIntoCgroup : .forkThenJoin }

    var shimValue: CInt {
        switch self {
        case .clone3IntoCgroup: CInt(JOBSHIM_PATH_CLONE3_INTO_CGROUP)
        case .cloneThenJoin: CInt(JOBSHIM_PATH_CLONE_JOIN)
        case .forkThenJoin: CInt(JOBSHIM_PATH_FORK_JOIN)
        case .forkIntoCgroup: CInt(JOBSHIM_PATH_FORK_INTO_CGROUP)
        }
    }

    public var description: String {
        switch self {
        case .clone3IntoCgroup: "clone3-into-cgroup"
        case .cloneThenJoin: "clone-then-join"
        case .forkThenJoin: "fork-then-join"
        case .forkIntoCgroup: "fork-into-cgroup"
        }
    }
}

import Glibc
import SystemPackage

/// How firmly a job holds its processes.
public enum JobContainment: Sendable, Hashable, CustomStringConvertible {
    /// A cgroup this process made (the cgroupfs driver): no member leaves by
    /// forking, `setsid` or double-forking; limits, freezing, accounting and
    /// the end of the job when its owner is SIGKILLed all hold.
    case cgroup
    /// The same, in a scope systemd made and delegated (the systemd driver).
    case systemdScope
    /// No cgroup could be made (a read-only cgroup2, no delegation, no
    /// systemd): the owner is a child subreaper and follows every descendant
    /// of the job's processes through `/proc` and pidfds (`ProcessTree`). A
    /// daemon that double-forks is still found and killed; but limits,
    /// accounting and events need a cgroup, freezing is SIGSTOP, and if the
    /// owner is SIGKILLed the processes live on.
    case subreaper

    public var description: String {
        switch self {
        case .cgroup: "cgroup"
        case .systemdScope: "cgroup in a systemd scope"
        case .subreaper: "subreaper only"
        }
    }
}

/// What any job offers, whatever holds its processes: a `JobObject` (a
/// cgroup) or a `ProcessTree` (no cgroup). Made by
/// `JobObject.createContainer`, which gives the strongest the machine
/// allows; `JobObject.create` is for a caller that requires a cgroup.
///
/// ```swift
/// let job = try JobObject.createContainer(name: "build")
/// if job.containment == .subreaper { print("warning: no cgroup; limits and owner-death kill unavailable") }
/// let make = try job.spawn(SpawnOptions("make", arguments: ["-j8"]))
/// _ = await make.wait()
/// try await job.close()
/// ```
public protocol ProcessContainer: AnyObject, Sendable {
    /// The job's name.
    var name: JobName { get }
    /// How firmly the job holds its processes.
    var containment: JobContainment { get }
    /// Spawns a process in the job.
    func spawn(_ options: SpawnOptions) throws(JobObjectError) -> ProcessHandle
    /// The pids of every process in the job now.
    func processIDs() throws(JobObjectError) -> [pid_t]
    /// Whether no process is left in the job.
    var isEmpty: Bool { get throws(JobObjectError) }
    /// Sends `signal` to every process in the job; returns how many got it.
    func signal(_ signal: Signal) throws(JobObjectError) -> Int
    /// Stops every process in the job.
    func freeze() async throws(JobObjectError)
    /// Resumes what `freeze` stopped.
    func thaw() async throws(JobObjectError)
    /// `termination`'s signal, its grace period, then the kill; returns once the job is empty.
    func terminate(_ termination: GracefulTermination, exitCode: Int32) async throws(JobObjectError) -> TerminationOutcome
    /// Kills what is left (when the job kills on close) and releases the job.
    func close() async throws(JobObjectError)
}

extension JobObject: ProcessContainer {
    /// `.systemdScope` for a job in the scope the systemd driver made for
    /// this process, else `.cgroup`.
    public var containment: JobContainment {
        guard let unit = SystemdScope.enteredUnit, cgroupPath.contains("/" + unit + "/") else { return .cgroup }
        return .systemdScope
    }

    /// Creates the strongest job this machine allows the caller: a
    /// `JobObject`, or — where no cgroup can be made for it (a read-only
    /// cgroup2 mount, no delegation and no systemd session, no cgroup2 at
    /// all) — a `ProcessTree`, whose `containment` says what is weaker.
    /// The fallback is taken only for the default parent and for limits
    /// that need no cgroup (none, or per-process `resourceLimits`); with a
    /// parent given or such limits the cgroup error is thrown.
    public static func createContainer(
        name: String? = nil, limits: JobLimits = JobLimits(), killOnClose: Bool = true, trackDescendants: Bool = true
    ) throws(JobObjectError) -> any ProcessContainer {
        do {
            return try create(name: name, limits: limits, killOnClose: killOnClose, trackDescendants: trackDescendants)
        } catch {
            guard ProcessTree.canStandIn(for: error, limits: limits) else { throw error }
            return try ProcessTree(name: name, killOnClose: killOnClose, resourceLimits: limits.perProcess, reason: error)
        }
    }
}

extension ProcessTree {
    /// Whether a tree may stand in for the job `JobObject.create` refused
    /// with `error`: the error means that no cgroup can be made for this
    /// process in the default parent, and `limits` can be kept without one.
    public static func canStandIn(for error: JobObjectError, limits: JobLimits) -> Bool {
        guard [.cgroup2NotMounted, .parentNotWritable, .parentNotDelegated].contains(error.code) else { return false }
        guard getenv(JobParent.environmentVariable) == nil else { return false }
        var withoutPerProcess = limits
        withoutPerProcess.perProcess = []
        return withoutPerProcess == JobLimits()
    }
}

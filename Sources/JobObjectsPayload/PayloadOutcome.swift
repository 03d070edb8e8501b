import JobObjects
import Glibc
import SystemPackage

/// How a payload ended: init's status (the job's), what the job used, and
/// every step of the cleanup with its result.
public struct PayloadOutcome: Sendable, CustomStringConvertible {
    /// The payload's name.
    public var name: String
    /// The job's cgroup directory (removed by now unless a step failed).
    public var jobPath: FilePath
    /// Init's pid.
    public var initPID: pid_t
    /// Init's exit status, which is the job's.
    public var initStatus: ExitStatus
    /// The job's accounting, read once it was empty and before its cgroup went.
    public var accounting: JobAccounting?
    /// The uid, gid and groups the payload ran with; nil: the owner's.
    public var credentials: SpawnOptions.Credentials?
    /// The uid allocated for the job, if it ran as an ephemeral user.
    public var ephemeralUID: uid_t?
    /// Where the payload directory was mounted.
    public var sandboxMountPoint: FilePath
    /// In the order they ran.
    public var cleanup: [PayloadCleanupStep]

    /// True when every cleanup step worked.
    public var cleanedUp: Bool { cleanup.allSatisfy(\.succeeded) }
    /// The steps that failed.
    public var failures: [PayloadCleanupStep] { cleanup.filter { !$0.succeeded } }

    public var description: String {
        (["payload \(name): init \(initStatus)"] + cleanup.map { "  " + $0.description }).joined(separator: "\n")
    }
}

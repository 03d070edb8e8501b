import JobObjects
import Glibc

/// A validated spec, resolved against the system: numbers for users and
/// groups, the capability set, the compiled seccomp filter, the mounts in
/// the order they are made and the paths to create for them. Made by
/// `PayloadPlanner`; nothing has been changed on the system yet.
struct PayloadPlan: Sendable {
    enum Identity: Sendable, Hashable {
        /// The owner's own user and groups.
        case inherit
        case fixed(SpawnOptions.Credentials)
        /// A uid allocated at start from `range`, in group `gid`.
        case ephemeral(range: ClosedRange<UInt32>, gid: gid_t, groups: [gid_t])
    }

    /// A path the runner creates as a mount point (and removes at the end).
    struct CreatedPath: Sendable, Hashable {
        var path: String
        var isDirectory: Bool
    }

    var name: String
    var mode: PayloadSpec.StorageMode
    var storageRoot: String
    var sandboxMountPoint: String
    var payloadDirectory: String
    /// The sandbox first; a mount inside another comes after it.
    var mounts: [SpawnOptions.BindMount]
    /// In creation order: parents before children; the storage root first.
    var createdPaths: [CreatedPath]
    var executable: String
    var arguments: [String]
    var workingDirectory: String
    var environment: [String: String]
    var identity: Identity
    var capabilities: Set<Capability>?
    var noNewPrivileges: Bool
    var seccompFilter: SeccompFilter?
    var limits: JobLimits
    var grace: Duration
}

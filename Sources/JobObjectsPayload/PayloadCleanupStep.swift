import JobObjects
/// One step of a payload's end: what was done to what, and whether it
/// worked. Every step runs even when an earlier one failed.
public struct PayloadCleanupStep: Sendable, CustomStringConvertible {
    /// What a step does.
    public enum Action: String, Sendable, Hashable {
        /// SIGTERM to what init left behind, the grace period, then `cgroup.kill`.
        case endProcesses = "end processes"
        /// A host-visible mount, unmounted (last mounted first).
        case unmount
        /// The job's private mount namespace, checked to be gone with its
        /// last process (the kernel unmounted everything in it).
        case releaseMountNamespace = "release mount namespace"
        /// A mount point, directory or record the runner created.
        case remove
        /// The job's cgroup.
        case removeCgroup = "remove cgroup"
        /// The ephemeral uid's lock.
        case releaseUser = "release user"
        /// The janitor that stands in for a dead owner, told it is not needed.
        case stopJanitor = "stop janitor"
    }

    /// What was done.
    public var action: Action
    /// To what: a job, a mount point, a path, a uid.
    public var target: String
    /// Why the step failed; nil when it worked.
    public var error: JobObjectError?
    /// What happened, when there is more to say ("detached lazily: busy").
    public var detail: String?

    /// A step, failed when `error` is given.
    public init(_ action: Action, _ target: String, error: JobObjectError? = nil, detail: String? = nil) {
        self.action = action
        self.target = target
        self.error = error
        self.detail = detail
    }

    /// Whether it worked.
    public var succeeded: Bool { error == nil }

    public var description: String {
        var text = "\(action.rawValue) \(target): " + (error.map { "FAILED: \($0)" } ?? "ok")
        if let detail { text += " (\(detail))" }
        return text
    }
}

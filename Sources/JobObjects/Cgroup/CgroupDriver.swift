import CJobShim
import Glibc
import SystemPackage

/// Where job parents come from.
///
/// - `cgroupfs`: the job parent is a directory this process makes in the
///   cgroup2 mount, below its own cgroup (or where `parent:` says). Right
///   where no service manager owns the tree, and inside a unit or scope that
///   systemd delegates (`Delegate=yes`).
/// - `systemd`: systemd makes a transient scope with `Delegate=yes` in
///   `jobobjects.slice` and moves this process into it (on the system
///   manager for root, on the user's own manager otherwise, as runc, crun
///   and podman do with their systemd cgroup driver); job parents are then
///   made inside that scope as with `cgroupfs`. systemd then never finds
///   cgroups in its tree that it did not delegate.
///
/// Unless forced (`JOBOBJECTS_CGROUP_DRIVER`, or the `driver:` argument of
/// `JobParent.resolve`), the choice is `CgroupDriverChoice.select`'s.
public enum CgroupDriver: String, Sendable, CaseIterable, CustomStringConvertible {
    case cgroupfs
    case systemd

    /// The environment variable that forces a driver: `cgroupfs` or `systemd`.
    public static let environmentVariable = "JOBOBJECTS_CGROUP_DRIVER"

    /// Parses a driver's name, as the environment variable and flags give it.
    public init(parsing text: String) throws(JobObjectError) {
        guard let driver = CgroupDriver(rawValue: text) else {
            throw JobObjectError(
                .invalidArgument,
                "unknown cgroup driver \(quotedForMessage(text)): use cgroupfs (job parents made directly in the cgroup2 mount) or systemd (a delegated scope from systemd)",
                operation: "choose cgroup driver")
        }
        self = driver
    }

    public var description: String { rawValue }
}

/// The driver in use for this process, and why it was chosen, in words.
public struct CgroupDriverChoice: Sendable, Equatable, CustomStringConvertible {
    public let driver: CgroupDriver
    /// Why: e.g. "systemd manages this machine and /user.slice/… is not delegated".
    public let reason: String
    /// The scope the systemd driver made for this process, once it has.
    public let scope: String?

    init(driver: CgroupDriver, reason: String, scope: String? = nil) {
        self.driver = driver
        self.reason = reason
        self.scope = scope
    }

    /// Chooses, in this order: the forced driver (`forced`, else the
    /// environment variable); cgroupfs when a parent is given (`explicit`
    /// or `JOBOBJECTS_CGROUP_PARENT`); systemd once this process is in the
    /// scope it made; cgroupfs where systemd does not manage the machine
    /// (no `/run/systemd/system`), inside another job's cgroup namespace
    /// (nested jobs go below the own cgroup), or when the own cgroup is
    /// delegated (`Delegate=yes`: systemd's `trusted.delegate` or
    /// `user.delegate` mark, or a non-root caller owning it); systemd
    /// otherwise. Creates nothing.
    public static func select(
        parent explicit: FilePath? = nil, forced: CgroupDriver? = nil
    ) throws(JobObjectError)
        -> CgroupDriverChoice
    {
        // Cheapest first: this runs before every job a process makes.
        let systemdRuns = access("/run/systemd/system", F_OK) == 0
        if let unit = SystemdScope.enteredUnit {
            return CgroupDriverChoice(driver: .systemd, reason: "in the scope systemd made for this process, \(unit)", scope: unit)
        }
        let environment = try environmentDriver()
        if let driver = forced ?? environment {
            let source = forced == nil ? "\(CgroupDriver.environmentVariable)=\(driver)" : "asked for"
            let askedFor = forced == nil ? "was asked for (\(source))" : "was asked for"
            if driver == .systemd {
                if !systemdRuns {
                    throw JobObjectError(
                        .invalidArgument,
                        "the systemd cgroup driver \(askedFor), but systemd does not manage this machine (no /run/systemd/system); use the cgroupfs driver",
                        operation: "choose cgroup driver")
                }
                if let given = explicit?.string ?? environmentParent() {
                    throw JobObjectError(
                        .invalidArgument,
                        "the systemd cgroup driver \(askedFor) together with the job parent \(quotedForMessage(given)); with systemd the parent is a scope systemd makes: drop one of the two",
                        operation: "choose cgroup driver")
                }
            }
            return CgroupDriverChoice(driver: driver, reason: source)
        }
        if explicit != nil || environmentParent() != nil {
            return CgroupDriverChoice(driver: .cgroupfs, reason: "a job parent was given")
        }
        if !systemdRuns {
            return CgroupDriverChoice(driver: .cgroupfs, reason: "systemd does not manage this machine")
        }
        let hierarchy = try CgroupHierarchy.discover()
        if hierarchy.namespaceView.directory != hierarchy.mountDirectory {
            return CgroupDriverChoice(
                driver: .cgroupfs, reason: "in a cgroup namespace rooted at \(hierarchy.namespaceView.directory): jobs nest below it")
        }
        let own = hierarchy.delegationRootDirectory
        if own != hierarchy.mountDirectory, isDelegated(own) {
            return CgroupDriverChoice(driver: .cgroupfs, reason: "systemd delegates \(own) to this process (Delegate=yes)")
        }
        return CgroupDriverChoice(
            driver: .systemd, reason: "systemd manages this machine and does not delegate \(own) to this process")
    }

    /// systemd marks the cgroup of a unit with `Delegate=yes` with the
    /// `trusted.delegate` attribute (readable by root) and, from v252 on,
    /// `user.delegate`; a cgroup a non-root caller owns was delegated to it
    /// by whoever made it.
    static func isDelegated(_ directory: String) -> Bool {
        for attribute in ["trusted.delegate", "user.delegate"] {
            var value: UInt8 = 0
            if getxattr(directory, attribute, &value, 1) == 1, value == UInt8(ascii: "1") { return true }
        }
        var status = stat()
        let uid = geteuid()
        return uid != 0 && stat(directory, &status) == 0 && status.st_uid == uid
    }

    private static func environmentDriver() throws(JobObjectError) -> CgroupDriver? {
        guard let value = getenv(CgroupDriver.environmentVariable), value.pointee != 0 else { return nil }
        return try CgroupDriver(parsing: String(cString: value))
    }

    private static func environmentParent() -> String? {
        getenv(JobParent.environmentVariable).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    public var description: String { "\(driver) (\(reason))" }
}

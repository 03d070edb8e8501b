import Glibc
import Synchronization
import SystemPackage

/// The cgroup under which jobs are created.
///
/// Chosen in this order: the path passed in, `JOBOBJECTS_CGROUP_PARENT`,
/// else `jobobjects` under the caller's own cgroup — which, under the
/// systemd driver (see `CgroupDriver`), is first a scope systemd makes and
/// delegates to this process. An absolute path is a directory in the
/// cgroup2 mount (any other is refused, naming the mount); a relative path
/// is below the caller's own cgroup. A parent this process creates is
/// removed again once its last job has left.
public struct JobParent: Sendable, Equatable, CustomStringConvertible {
    /// The parent's directory, e.g. `/sys/fs/cgroup/unified/jobobjects`.
    public var path: FilePath { FilePath(cgroupPath) }
    /// The same, as the text the system calls take.
    let cgroupPath: String
    /// The cgroup2 hierarchy the parent is in.
    public let hierarchy: CgroupHierarchy
    /// The default parent is made on demand and removed again by the last
    /// job to leave it, so nothing stays behind.
    let isDefault: Bool

    /// The environment variable that names the default parent.
    public static let environmentVariable = "JOBOBJECTS_CGROUP_PARENT"
    /// The default parent's name, under the caller's own cgroup.
    public static let defaultName = "jobobjects"
    /// The leaf a supervisor moves into so its own cgroup can give controllers to jobs.
    public static let supervisorLeafName = "supervisor"

    /// Resolves the parent where this process makes its jobs. Creates
    /// nothing, but for one step of the systemd driver: the first time it
    /// is chosen (`CgroupDriverChoice.select`), this process moves into a
    /// delegated scope that systemd makes for it, and its jobs go there.
    public static func resolve(_ explicit: FilePath? = nil, driver: CgroupDriver? = nil) throws(JobObjectError) -> JobParent {
        let choice = try CgroupDriverChoice.select(parent: explicit, forced: driver)
        if choice.driver == .systemd, SystemdScope.enteredUnit == nil {
            try SystemdScope.enter()
            // The scope holds this process alone: it moves on into the
            // `supervisor` leaf at once, so that the controllers its jobs'
            // limits need can be enabled in the scope.
            try resolveHere(nil).moveCallerIntoLeaf()
        }
        return try resolveHere(explicit)
    }

    /// The parents in which existing jobs are looked for (by name, or all
    /// of them): the one `resolve` gives, or — under the systemd driver,
    /// from a process that has no scope of its own yet, such as
    /// `jobsup list` — that of every scope in `jobobjects.slice`. Creates nothing.
    public static func lookup(_ explicit: FilePath? = nil, driver: CgroupDriver? = nil) throws(JobObjectError) -> [JobParent] {
        let choice = try CgroupDriverChoice.select(parent: explicit, forced: driver)
        guard choice.driver == .systemd, SystemdScope.enteredUnit == nil else { return [try resolveHere(explicit)] }
        let hierarchy = try CgroupHierarchy.discover()
        let slice = SystemdScope.sliceDirectory(in: hierarchy)
        let scopes = (try? Syscall.listDirectory(slice, directoriesOnly: true).get()) ?? []
        return scopes.filter { $0.hasSuffix(".scope") }.sorted().map { scope in
            JobParent(
                cgroupPath: CgroupPath.join(CgroupPath.join(slice, scope), defaultName), hierarchy: hierarchy, isDefault: false)
        }
    }

    /// `resolve` in the cgroup this process is in now.
    private static func resolveHere(_ explicit: FilePath?) throws(JobObjectError) -> JobParent {
        let hierarchy = try CgroupHierarchy.discover()
        let fromEnvironment = getenv(environmentVariable).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        guard let given = explicit?.string ?? fromEnvironment else {
            return JobParent(
                cgroupPath: CgroupPath.join(hierarchy.delegationRootDirectory, defaultName), hierarchy: hierarchy, isDefault: true)
        }
        let mount = hierarchy.mountDirectory
        let path: String
        if given == mount || given.hasPrefix(mount + "/") {
            path = given
        } else if given.hasPrefix("/") {
            throw JobObjectError(
                .invalidArgument,
                "job parent \(quotedForMessage(given)) is not in the cgroup2 mount \(mount): give a directory under it (\(mount)/jobs) or a path relative to this process's cgroup (jobs)",
                operation: "resolve job parent", path: given)
        } else {
            path = CgroupPath.join(hierarchy.delegationRootDirectory, given)
        }
        if path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) {
            throw JobObjectError(
                .invalidArgument, "job parent \(given) must not contain \".\" or \"..\" components", operation: "resolve job parent",
                path: given)
        }
        return JobParent(cgroupPath: path, hierarchy: hierarchy, isDefault: false)
    }

    /// Creates the parent directory when missing and checks that jobs can
    /// be made in it.
    func prepare() throws(JobObjectError) {
        if Self.prepared.withLock({ $0.contains(cgroupPath) }) { return }
        try prepareAnew()
        Self.prepared.withLock { $0.append(cgroupPath) }
    }

    /// Parents this process has prepared: made or found, and checked.
    /// `create` prepares a parent again when making a job in it fails
    /// because it has gone meanwhile (`forgetPrepared`).
    private static let prepared = Mutex<[String]>([])

    func forgetPrepared() {
        Self.prepared.withLock { $0.removeAll { $0 == cgroupPath } }
    }

    private func prepareAnew() throws(JobObjectError) {
        if hierarchy.isReadOnly {
            throw JobObjectError(
                .parentNotWritable,
                "the cgroup2 mount \(hierarchy.mountDirectory) is read-only; jobs need a writable cgroup2 (in a container: a private cgroup namespace with a writable /sys/fs/cgroup)",
                operation: "prepare job parent", path: cgroupPath)
        }
        switch Syscall.mkdir(cgroupPath, 0o755) {
        case .success:
            CgroupSetUp.madeParent(cgroupPath)
            return  // made by this process, so it may make jobs in it
        case .failure(.fileExists): break
        case .failure(.noSuchFileOrDirectory):
            throw JobObjectError(
                .jobNotFound,
                "the job parent's own parent \(CgroupPath.parent(of: cgroupPath)) does not exist; create it or choose another parent",
                operation: "prepare job parent", path: cgroupPath, errno: .noSuchFileOrDirectory)
        case .failure(let errno):
            throw JobObjectError.system(errno, operation: "prepare job parent", path: cgroupPath, what: "create the job parent")
        }
        if case .failure(let errno) = Syscall.access(cgroupPath + "/cgroup.procs", W_OK) {
            throw JobObjectError.system(errno, operation: "prepare job parent", path: cgroupPath, what: "write to the job parent")
        }
    }

    /// Refuses a parent outside this process's cgroup namespace on a
    /// hierarchy mounted with `nsdelegate`: the kernel would let the job be
    /// made but never let a process be moved into it (a member of another
    /// job, in that job's namespace, pointed at a parent elsewhere).
    func checkReachable() throws(JobObjectError) {
        guard hierarchy.namespacePath(of: cgroupPath) == nil, hierarchy.hasNamespaceDelegation else { return }
        throw JobObjectError(
            .parentNotDelegated,
            "the job parent lies outside this process's cgroup namespace (rooted at \(hierarchy.namespaceView.directory)), and with cgroup2's nsdelegate no process can be moved there from here; use a parent inside \(hierarchy.namespaceView.directory), such as the default one",
            operation: "create job", path: cgroupPath)
    }

    /// Whether the parent goes with its last job: the default one, or one
    /// this process created (the watchdog removes it too, should this
    /// process die first).
    var removesItself: Bool { isDefault || CgroupSetUp.isMadeParent(cgroupPath) }

    /// Removes the default parent, or one this process created, once no job
    /// is left in it (another process's job keeps it: rmdir then fails with
    /// EBUSY and that is fine).
    func removeIfUnused() {
        guard removesItself else { return }
        if case .success = Syscall.rmdir(cgroupPath) { forgetPrepared() }
    }

    /// The controllers jobs under this parent can use: those listed in its
    /// `cgroup.controllers` (what its own parent passes down); before it
    /// exists, what its nearest existing ancestor passes down.
    public func availableControllers() -> Set<String> {
        var source = cgroupPath + "/cgroup.controllers"
        if access(cgroupPath, F_OK) != 0 {
            var ancestor = CgroupPath.parent(of: cgroupPath)
            while access(ancestor, F_OK) != 0, ancestor.count > hierarchy.mountDirectory.count {
                ancestor = CgroupPath.parent(of: ancestor)
            }
            source = ancestor + "/cgroup.subtree_control"
        }
        guard case .success(let text) = FileContents.read(source) else { return [] }
        return Set(text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// What this parent and kernel offer, as a value a caller can print.
    public func report() throws(JobObjectError) -> DelegationReport {
        report(driver: try CgroupDriverChoice.select(parent: isDefault ? nil : path))
    }

    /// What the parent that `resolve` would give offers, without making
    /// anything: under the systemd driver before this process has its
    /// scope, the parent is where that scope will be.
    public static func report(_ explicit: FilePath? = nil, driver: CgroupDriver? = nil) throws(JobObjectError) -> DelegationReport {
        let choice = try CgroupDriverChoice.select(parent: explicit, forced: driver)
        guard choice.driver == .systemd, SystemdScope.enteredUnit == nil else { return try resolveHere(explicit).report(driver: choice) }
        let hierarchy = try CgroupHierarchy.discover()
        let me = ProcessIdentity.current
        let scope = CgroupPath.join(SystemdScope.sliceDirectory(in: hierarchy), "jobobjects-\(me.pid)-\(me.startTime).scope")
        let planned = JobParent(cgroupPath: CgroupPath.join(scope, defaultName), hierarchy: hierarchy, isDefault: true)
        return planned.report(driver: choice)
    }

    private func report(driver: CgroupDriverChoice) -> DelegationReport {
        DelegationReport(
            driver: driver, mountPoint: hierarchy.mountPoint, ownCgroup: hierarchy.ownCgroup, parent: path,
            controllers: availableControllers().sorted(),
            cgroupKill: cgroupKillPresent(), namespaceDelegation: hierarchy.hasNamespaceDelegation,
            kernel: KernelFeatures.current, noCgroupReason: driver.scope == nil && driver.driver == .systemd ? nil : creationProblem())
    }

    /// Why no job can be made here, if that is known without trying: a
    /// read-only mount, or a nearest existing directory this user may not
    /// write to.
    private func creationProblem() -> String? {
        if hierarchy.isReadOnly { return "the cgroup2 mount \(hierarchy.mountDirectory) is read-only" }
        var directory = cgroupPath
        while access(directory, F_OK) != 0, directory.count > hierarchy.mountDirectory.count {
            directory = CgroupPath.parent(of: directory)
        }
        if access(directory, W_OK) != 0 { return "this user may not create cgroups in \(directory) (no delegation)" }
        return nil
    }

    /// cgroup.kill exists in every non-root cgroup on Linux 5.14+; the root
    /// has none, so look in the parent or, before it exists, the own cgroup.
    private func cgroupKillPresent() -> Bool? {
        for directory in [cgroupPath, hierarchy.ownCgroupDirectory] where directory != hierarchy.mountDirectory {
            if access(directory, F_OK) == 0 { return access(directory + "/cgroup.kill", F_OK) == 0 }
        }
        return nil
    }

    public var description: String { cgroupPath }
}

/// What a job parent and the kernel offer.
public struct DelegationReport: Sendable, CustomStringConvertible {
    /// Where job parents come from, and why.
    public let driver: CgroupDriverChoice
    /// The parent lies in the scope the systemd driver makes with this
    /// process's first job, which does not exist yet.
    public var parentAwaitsScope: Bool { driver.driver == .systemd && driver.scope == nil }
    /// Where cgroup2 is mounted.
    public let mountPoint: FilePath
    /// The caller's own cgroup, as a directory.
    public let ownCgroup: FilePath
    /// The job parent, as a directory.
    public let parent: FilePath
    /// Controllers jobs can enable (empty on a hybrid host, where they stay on cgroup v1).
    public let controllers: [String]
    /// `cgroup.kill` exists (Linux 5.14); nil when no non-root cgroup could be checked yet.
    public let cgroupKill: Bool?
    /// The hierarchy is mounted with `nsdelegate`: members, each in a cgroup
    /// namespace rooted at its job, cannot migrate out of it.
    public let namespaceDelegation: Bool
    /// What the kernel offers for spawning and waiting.
    public let kernel: KernelFeatures
    /// Why no cgroup can be made for jobs here, if that is so: jobs are then
    /// held as a child subreaper only (`JobObject.createContainer`, `jobsup run`).
    public let noCgroupReason: String?

    /// How firmly members are held in their job, in words.
    var containment: String {
        if !kernel.cgroupNamespace { return "members can move out (no cgroup namespaces in this kernel)" }
        if !SpawnOptions.cgroupNamespaceAvailable {
            return "members can move to any cgroup this user may write to (a cgroup namespace per job needs CAP_SYS_ADMIN)"
        }
        if !namespaceDelegation {
            return "members see their job as / but root members can move out (mount cgroup2 with nsdelegate to prevent it)"
        }
        return "members cannot move out of their job (cgroup namespace at the job, nsdelegate), unless they keep CAP_SYS_ADMIN"
    }

    public var description: String {
        """
        cgroup driver:  \(driver)
        cgroup2 mount:  \(mountPoint)
        own cgroup:     \(ownCgroup)
        job parent:     \(parent)\(parentAwaitsScope ? " (systemd makes the scope with the first job)" : "")
        controllers:    \(controllers.isEmpty ? "none (limits unavailable; grouping, kill, freeze and events work)" : controllers.joined(separator: " "))
        cgroup.kill:    \(cgroupKill.map { $0 ? "yes" : "no (freeze, kill each, thaw)" } ?? "unknown until a job exists")
        jobs held by:   \(noCgroupReason.map { "a child subreaper only (\($0)): no limits, freezing, accounting, events or kill when jobsup is SIGKILLed; jobsup run --require-cgroup refuses" } ?? "a cgroup each")
        containment:    \(containment)
        clone3:         \(kernel.clone3 ? "yes" : "no")
        CLONE_INTO_CGROUP: \(kernel.cloneIntoCgroup ? "yes" : "no")
        waitid(P_PIDFD): \(kernel.waitidPidfd ? "yes" : "no")
        spawn path:     \(kernel.spawnPath)
        """
    }
}

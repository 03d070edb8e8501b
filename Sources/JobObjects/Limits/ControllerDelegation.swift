import Glibc

/// Makes controllers available to the jobs under a parent by enabling them
/// in `cgroup.subtree_control` from the nearest ancestor that has them down
/// to the parent. Only what a job asks for is enabled, and never above the
/// delegated cgroup the parent lies in (see `bound(for:)`).
enum ControllerDelegation {
    static func enable(_ controllers: Set<String>, under parent: JobParent) throws(JobObjectError) {
        for controller in controllers.sorted() {
            try enable(controller, under: parent)
        }
    }

    /// The highest cgroup whose `cgroup.subtree_control` may be written for
    /// the jobs under `parent`: the caller's own (delegated) cgroup when the
    /// parent lies below it. A parent outside it is usually that of a job
    /// run by a supervisor in another cgroup and managed from here with
    /// a parent path given explicitly; that supervisor sits in the
    /// `supervisor` leaf of its delegated cgroup (`moveCallerIntoLeaf`), so
    /// the nearest ancestor holding such a leaf is where that supervisor
    /// itself would enable controllers from, and so may we. Without one,
    /// nothing above the parent is touched.
    static func bound(for parent: JobParent) -> String {
        let own = parent.hierarchy.delegationRootDirectory
        if parent.cgroupPath.hasPrefix(own + "/") { return own }
        let mount = parent.hierarchy.mountDirectory
        var directory = parent.cgroupPath
        while directory.hasPrefix(mount + "/") {
            directory = CgroupPath.parent(of: directory)
            if access(CgroupPath.join(directory, JobParent.supervisorLeafName), F_OK) == 0 { return directory }
        }
        return parent.cgroupPath
    }

    private static func enable(_ controller: String, under parent: JobParent) throws(JobObjectError) {
        let bound = bound(for: parent)
        var chain = [parent.cgroupPath]
        while !listed(controller, in: chain[0] + "/cgroup.controllers") {
            if chain[0] == bound || chain[0] == parent.hierarchy.mountDirectory {
                throw unavailable(controller, parent: parent, checked: chain[0])
            }
            chain.insert(CgroupPath.parent(of: chain[0]), at: 0)
        }
        for directory in chain where !listed(controller, in: directory + "/cgroup.subtree_control") {
            switch FileContents.write(at: AT_FDCWD, directory + "/cgroup.subtree_control", "+" + controller) {
            case .success:
                CgroupSetUp.enabled(controller, in: directory)
                continue
            case .failure(.resourceBusy):
                throw JobObjectError(
                    .controllerUnavailable,
                    "cannot enable the \(controller) controller for the jobs under \(directory): that cgroup holds processes (cgroup v2 lets a cgroup hold processes or controller-using children, not both); move the processes into a leaf cgroup first — jobsup does this by itself, the library with JobParent.moveCallerIntoLeaf()",
                    operation: "enable controller", path: directory + "/cgroup.subtree_control", errno: .resourceBusy)
            case .failure(let errno):
                throw JobObjectError.system(
                    errno, operation: "enable controller", path: directory + "/cgroup.subtree_control",
                    what: "enable the \(controller) controller in")
            }
        }
    }

    private static func listed(_ controller: String, in file: String) -> Bool {
        guard case .success(let text) = FileContents.read(file) else { return false }
        return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains(Substring(controller))
    }

    /// The error for a controller the parent cannot have, with why.
    static func unavailable(_ controller: String, parent: JobParent, checked: String) -> JobObjectError {
        let mount = parent.hierarchy.mountDirectory
        if onCgroupV1(controller) {
            return JobObjectError(
                .controllerUnavailable,
                "the \(controller) controller is not available in \(mount) (this host keeps it on cgroup v1); limits that need it work on a pure cgroup v2 host (boot with systemd.unified_cgroup_hierarchy=1)",
                operation: "enable controller", path: checked)
        }
        if !listed(controller, in: mount + "/cgroup.controllers") {
            return JobObjectError(
                .controllerUnavailable,
                "the kernel offers no \(controller) controller in \(mount) (see \(mount)/cgroup.controllers)",
                operation: "enable controller", path: checked)
        }
        if let manager = userManager(above: checked) {
            let given = (try? FileContents.read(manager + "/cgroup.controllers").get())?.nonEmptyLines.first.map(String.init) ?? "none"
            return JobObjectError(
                .controllerUnavailable,
                "the \(controller) controller is not delegated to \(checked): a user's systemd manager passes on only what it was given (\(given)); root gives it more with a drop-in, /etc/systemd/system/user@.service.d/delegate.conf holding [Service] Delegate=cpu cpuset io memory pids",
                operation: "enable controller", path: checked)
        }
        return JobObjectError(
            .controllerUnavailable,
            "the \(controller) controller is not delegated to \(checked); enable it in the cgroup.subtree_control of its parent (systemd: Delegate=yes on the unit)",
            operation: "enable controller", path: checked)
    }

    /// The cgroup of the user manager (`user@UID.service`) that `directory` lies in, if any.
    private static func userManager(above directory: String) -> String? {
        var candidate = directory
        while candidate.count > 1 {
            let name = CgroupPath.lastComponent(of: candidate)
            if name.hasPrefix("user@") && name.hasSuffix(".service") { return candidate }
            candidate = CgroupPath.parent(of: candidate)
        }
        return nil
    }

    /// Whether a cgroup v1 hierarchy with this controller is mounted.
    private static func onCgroupV1(_ controller: String) -> Bool {
        let v1Name = ["io": "blkio", "cpu": "cpu", "cpuset": "cpuset", "memory": "memory", "pids": "pids"][controller] ?? controller
        guard case .success(let mountinfo) = FileContents.read("/proc/self/mountinfo") else { return false }
        return mountinfo.nonEmptyLines.contains { (line: Substring) -> Bool in
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash + 3 < fields.count, fields[dash + 1] == "cgroup" else { return false }
            return fields[dash + 3].split(separator: ",").contains(Substring(v1Name))
        }
    }
}

extension JobParent {
    /// Moves the calling process from its own cgroup into a `supervisor`
    /// leaf beside the job parent (systemd's delegation convention), so that
    /// controllers can be enabled for jobs below its own cgroup. Call it
    /// before creating jobs (and so before the watchdog starts). Does
    /// nothing when the own cgroup is the hierarchy root, which is exempt.
    /// `JobParent.undoSetUp()` moves it back and removes the leaf.
    public func moveCallerIntoLeaf(named leaf: String = JobParent.supervisorLeafName) throws(JobObjectError) {
        let own = hierarchy.delegationRootDirectory
        guard own != hierarchy.mountDirectory, cgroupPath.hasPrefix(own + "/") else { return }
        let target = CgroupPath.join(own, leaf)
        var made = false
        switch Syscall.mkdir(target, 0o755) {
        case .success: made = true
        case .failure(.fileExists): break
        case .failure(let errno):
            throw JobObjectError.system(errno, operation: "move into leaf", path: target, what: "create the leaf cgroup")
        }
        if case .failure(let errno) = FileContents.write(at: AT_FDCWD, target + "/cgroup.procs", "0") {
            if made { _ = Syscall.rmdir(target) }
            throw JobObjectError.system(errno, operation: "move into leaf", path: target + "/cgroup.procs", what: "move this process into")
        }
        CgroupSetUp.enteredLeaf(target, from: own, made: made)
    }
}

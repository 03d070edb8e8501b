import Glibc
import SystemPackage
import Synchronization

/// The systemd cgroup driver's one step: a transient scope with
/// `Delegate=yes` in `jobobjects.slice` that holds this process, started
/// with the manager's `StartTransientUnit` — the system manager for root,
/// the user's own manager (its bus under `$XDG_RUNTIME_DIR`) otherwise.
/// After it, this process sits in a cgroup that systemd delegates to it,
/// and job parents are made inside as in any delegated cgroup.
///
/// The call goes through `busctl`, systemd's own sd-bus client, which ships
/// wherever systemd runs: jobsup is one static executable, and libsystemd
/// exists only as a shared library (Debian ships no libsystemd.a), which a
/// static executable cannot load safely.
///
/// The scope ends by itself once no process is left in it (systemd stops
/// and collects it, `CollectMode=inactive-or-failed`), so nothing is left.
package enum SystemdScope {
    /// The slice that holds every scope this driver makes.
    static let sliceName = "jobobjects.slice"

    /// The unit this process entered, once it has.
    private static let entered = Mutex<String?>(nil)

    static var enteredUnit: String? { entered.withLock { $0 } }

    /// Enters a new scope unless this process is in one it made already.
    static func enter() throws(JobObjectError) {
        try entered.withLock { (unit: inout String?) throws(JobObjectError) in
            if unit != nil { return }
            let me = ProcessIdentity.current
            let name = "jobobjects-\(me.pid)-\(me.startTime).scope"
            let command = (try? FileContents.read("/proc/self/comm").get())?.nonEmptyLines.first.map(String.init) ?? "a process"
            try start(
                name, slice: sliceName, pid: me.pid, description: "JobObjects jobs of \(command) (pid \(me.pid))",
                otherwise: "use the cgroupfs driver with a delegated job parent instead")
            try waitUntilInside(name)
            unit = name
        }
    }

    /// Where this driver's scopes are, for a process that has not made one:
    /// the slice's cgroup under the system manager, or under the user's.
    static func sliceDirectory(in hierarchy: CgroupHierarchy) -> String {
        let uid = geteuid()
        let manager = uid == 0 ? "" : "user.slice/user-\(uid).slice/user@\(uid).service"
        return CgroupPath.join(CgroupPath.join(hierarchy.mountDirectory, manager), sliceName)
    }

    /// Starts the transient scope `name` with `Delegate=yes` in `slice`,
    /// holding `pid`: what the systemd driver does for this process, and
    /// what an OCI runtime's systemd cgroup driver does for a container.
    /// `otherwise` is the way round a refusal that the error names.
    static func start(
        _ name: String, slice: String, pid: pid_t, description: String, otherwise: String
    ) throws(JobObjectError) {
        guard let busctl = HelperProgram.find("busctl") else {
            throw JobObjectError(
                .parentNotDelegated,
                "the systemd cgroup driver needs busctl (part of systemd), which was not found in /usr/bin or /bin; install systemd's tools, or use the cgroupfs driver with a delegated job parent",
                operation: "start systemd scope")
        }
        let user = geteuid() != 0
        var environment: [String: String] = [:]
        if user {
            environment = try userBusEnvironment()
        }
        let properties: [String] = [
            "Description", "s", description,
            "Delegate", "b", "true",
            "PIDs", "au", "1", String(pid),
            "Slice", "s", slice,
            "CollectMode", "s", "inactive-or-failed",
        ]
        let arguments =
            (user ? ["--user"] : []) + [
                "--quiet", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))", name, "fail", "5",
            ] + properties + ["0"]
        let manager = user ? "the user's systemd manager (uid \(geteuid()))" : "systemd"
        switch HelperProgram.run(busctl, arguments, environment: environment) {
        case .failure(let errno):
            throw JobObjectError.system(errno, operation: "start systemd scope", path: busctl, what: "run")
        case .success(let result) where result.exitCode != 0:
            let said = result.output.split(separator: "\n").last.map(String.init) ?? "no message"
            throw JobObjectError(
                .parentNotDelegated,
                "\(manager) refused the scope \(name) with Delegate=yes: \(said); \(otherwise)",
                operation: "start systemd scope")
        case .success: break
        }
    }

    /// The user's manager listens on `$XDG_RUNTIME_DIR/bus`; a process
    /// started by `runuser` or `su` has no `XDG_RUNTIME_DIR`, but the
    /// manager's runtime directory is always `/run/user/UID`.
    private static func userBusEnvironment() throws(JobObjectError) -> [String: String] {
        if getenv("DBUS_SESSION_BUS_ADDRESS") != nil || getenv("XDG_RUNTIME_DIR") != nil { return [:] }
        let uid = geteuid()
        let runtime = "/run/user/\(uid)"
        guard access(runtime + "/bus", F_OK) == 0 else {
            throw JobObjectError(
                .parentNotDelegated,
                "no systemd user manager runs for uid \(uid) (no \(runtime)/bus), and an unprivileged process gets its cgroup from it; log in, or have root run `loginctl enable-linger` for this user, or give a job parent delegated to this user",
                operation: "start systemd scope")
        }
        return ["XDG_RUNTIME_DIR": runtime]
    }

    /// `StartTransientUnit` returns once the start job is queued; systemd
    /// moves the process when it runs the job, a moment later. Returns the
    /// scope's directory in the cgroup2 mount.
    @discardableResult
    static func waitUntilInside(_ name: String) throws(JobObjectError) -> String {
        var pause: UInt32 = 1000
        var waited: UInt32 = 0
        while true {
            if case .success(let text) = FileContents.read("/proc/self/cgroup"),
                let relative = CgroupHierarchy.ownRelativePath(procSelfCgroup: text), CgroupPath.lastComponent(of: relative) == name
            {
                return try CgroupHierarchy.discover().ownCgroupDirectory
            }
            if waited >= 30_000_000 {
                throw JobObjectError(
                    .systemCallFailed,
                    "systemd accepted the scope \(name) but did not move this process into it within 30 s (see systemctl status \(name))",
                    operation: "start systemd scope")
            }
            usleep(pause)
            waited += pause
            pause = min(pause * 2, 50_000)
        }
    }
}

// A scope made for another's job (an OCI runtime's systemd cgroup driver):
// systemd cannot start a scope empty, so this process starts it holding
// itself, waits in a leaf of it while the job is made (a cgroup that holds
// processes cannot pass controllers down) and goes back where it came from.
extension SystemdScope {
    /// Starts the scope `name` in `slice` holding this process, then moves
    /// this process into the scope's child `leaf`. Returns the scope's
    /// directory and the cgroup this process was in.
    package static func enter(
        _ name: String, slice: String, leaf: String, description: String, otherwise: String
    ) throws(JobObjectError) -> (scope: String, origin: String) {
        let origin = try CgroupHierarchy.discover().ownCgroupDirectory
        try start(name, slice: slice, pid: getpid(), description: description, otherwise: otherwise)
        let scope = try waitUntilInside(name)
        let target = CgroupPath.join(scope, leaf)
        var failure: Errno?
        if case .failure(let errno) = Syscall.mkdir(target, 0o755) {
            failure = errno
        } else if case .failure(let errno) = FileContents.write(at: AT_FDCWD, target + "/cgroup.procs", "0") {
            failure = errno
        }
        if let failure {
            leave(leaf, of: scope, to: origin)
            throw JobObjectError.system(failure, operation: "enter systemd scope", path: target, what: "move this process into")
        }
        return (scope, origin)
    }

    /// Moves this process back to `origin` and removes the scope's `leaf`;
    /// a scope left with no process is systemd's to stop. Safe to repeat.
    package static func leave(_ leaf: String, of scope: String, to origin: String) {
        _ = FileContents.write(at: AT_FDCWD, origin + "/cgroup.procs", "0")
        _ = Syscall.rmdir(CgroupPath.join(scope, leaf))
    }
}

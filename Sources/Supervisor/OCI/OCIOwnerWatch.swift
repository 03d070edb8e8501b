import Glibc
import JobObjects

/// Kill-on-close bound to the container's owner: the process that ran
/// `create` (the containerd shim, conmon) holds the container as a Windows
/// process holds a job handle, and when it dies the container ends, as a
/// job with `KILL_ON_JOB_CLOSE` ends when its last handle closes.
///
/// create starts `jobsup-runc watch-owner` for this, a small process of its
/// own outside the job (the owner only waits for create, and create exits
/// at once). It waits for the owner's exit through a pidfd and for the job
/// to empty; whichever comes first ends it: the owner's exit by ending the
/// container as `delete --force` does — the job killed, everything create
/// made removed, so nothing is left whether or not the engine calls delete
/// afterwards (it then hears "does not exist", which the engines take as
/// done) — the job's end by exiting quietly. The annotation
/// `jobobjects.io/kill-on-close: "false"` leaves a container to live on
/// without its owner, as runc's do.
enum OCIOwnerWatch {
    static let command = "watch-owner"
    /// glibc's POSIX_SPAWN_SETSID (2.26), which Swift's Glibc module leaves out.
    private static let spawnSetSID: CInt = 0x80
    static let annotation = "jobobjects.io/kill-on-close"

    /// Whether the config asks for the watch (the default).
    static func isWanted(_ value: String?) throws(OCIRuntimeError) -> Bool {
        switch value {
        case nil, "true": return true
        case "false": return false
        case let other?: throw OCIRuntimeError("annotation \(annotation) is \"true\" or \"false\", not \"\(other.prefix(40))\"")
        }
    }

    /// Starts the watch for container `id` (its record written already),
    /// owned by `owner`. Its standard streams are /dev/null, it has a
    /// session of its own and `/` as its directory, and it inherits no other
    /// descriptor: it must hold open no pipe of the engine's and no mount of
    /// the bundle's.
    static func start(root: String, id: String, owner: ProcessIdentity) throws(OCIRuntimeError) {
        let executable = try OCICreate.ownExecutable()
        markDescriptorsCloseOnExec()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: CInt in 0...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(spawnSetSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ["jobsup-runc", "--root", root, command, id, String(owner.pid), String(owner.startTime)]
        let saved = OCICreate.currentDirectory()
        chdir("/")
        defer { chdir(saved) }
        var pid: pid_t = 0
        let error = withCStrings(argv) { argvPointer in
            withCStrings(["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]) { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argvPointer, envp)
            }
        }
        guard error == 0 else {
            throw OCIRuntimeError("cannot start the owner watch for container \(id): \(String(cString: strerror(error)))")
        }
    }

    /// Every descriptor above the standard three (the engine's preserved
    /// ones, given to init already) closes at exec.
    private static func markDescriptorsCloseOnExec() {
        // The listing's own descriptor is closed by the time this runs: its
        // fcntl fails harmlessly.
        let names = (try? Syscall.listDirectory("/proc/self/fd").get()) ?? []
        for fd in names.compactMap({ CInt($0) }) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// The watch itself: `--root ROOT watch-owner ID OWNER-PID OWNER-START`.
    /// Plain system calls, no event loop or task: it starts as each
    /// container is created, on the engine's critical path.
    static func run(root: String, _ arguments: ArraySlice<String>) throws(OCIRuntimeError) -> Never {
        let values = Array(arguments)
        guard values.count == 3, let pid = pid_t(values[1]), let start = UInt64(values[2]) else {
            throw OCIRuntimeError("\(command) is started by create, not by hand")
        }
        let id = values[0]
        let owner = ProcessIdentity(pid: pid, startTime: start)
        let record = try OCILifecycle(root: root, id: id).record
        // Opened before the identity is checked: the pidfd then names the
        // owner itself, or a later process when the owner is gone already.
        if case .success(let pidfd) = Syscall.pidfdOpen(pid), owner.isAlive {
            let outcome = AbandonedJob.waitUntilEmpty(path: record.cgroup, cgroupID: record.cgroupID, orExitOf: pidfd)
            if outcome == .emptied { exit(0) }
        }
        // Still this container (not a later one under the same id): end it
        // and remove what create made, as delete --force does.
        guard let current = try? OCILifecycle(root: root, id: id), current.record.cgroupID == record.cgroupID,
            current.record.initProcess == record.initProcess
        else { exit(0) }
        try current.delete(force: true)
        exit(0)
    }
}

import Glibc
import JobObjects
import JobObjectsPayload
import SystemPackage

/// `exec [--process FILE] [--detach] [--pid-file P] [--preserve-fds N]
/// [--cwd DIR] [--tty --console-socket S] ID [COMMAND [ARG…]]`: one more process in a running
/// container's job, set up as the payload's init was — the process's user,
/// capabilities, rlimits and `noNewPrivileges`, the container's seccomp
/// profile — and inside init's mount namespace, where the sandbox is. The
/// process is the runtime's child: `--detach` leaves it to the caller's
/// subreaper (the containerd shim, conmon) after writing its pid; otherwise
/// the runtime waits and exits with its status, as a shell reports one.
struct OCIExec {
    let lifecycle: OCILifecycle
    let processFile: String?
    let command: [String]
    let workingDirectory: String?
    let detach: Bool
    let pidFile: String?
    let consoleSocket: String?
    /// `--tty`: a terminal, whatever the process file says.
    let tty: Bool
    let preservedDescriptors: Int

    init(root: String, arguments: OCIArguments) throws(OCIRuntimeError) {
        let id = try arguments.containerID("exec")
        consoleSocket = arguments["console-socket"]
        tty = arguments.has("tty")
        processFile = arguments["process"]
        command = Array(arguments.positionals.dropFirst())
        switch (processFile, command.isEmpty) {
        case (nil, true): throw OCIRuntimeError("exec needs --process FILE, or a command after the container id")
        case (.some, false): throw OCIRuntimeError("exec takes --process FILE or a command after the container id, not both")
        default: break
        }
        workingDirectory = arguments["cwd"]
        if let workingDirectory, !workingDirectory.hasPrefix("/") { throw OCIRuntimeError("--cwd must be an absolute path") }
        detach = arguments.has("detach")
        pidFile = arguments["pid-file"]
        guard let count = Int(arguments["preserve-fds"] ?? "0"), count >= 0, count <= 60 else {
            throw OCIRuntimeError("--preserve-fds must be a number from 0 to 60")
        }
        preservedDescriptors = count
        lifecycle = try OCILifecycle(root: root, id: id)
    }

    /// Starts the process; returns the status to exit with.
    func run() throws(OCIRuntimeError) -> Int32 {
        let record = lifecycle.record
        let status = record.status(root: lifecycle.root)
        guard status == "running" else { throw OCIRuntimeError("cannot exec in container \(record.id): it is \(status), not running") }
        var config: OCIConfig
        do {
            config = try OCIConfig.load(bundle: FilePath(record.bundle))
            if let processFile { config.process = try OCIConfig.loadProcess(file: FilePath(processFile)) }
        } catch {
            throw OCIRuntimeError(error.message)
        }
        // A command is init's process with other arguments, and a terminal
        // only with --tty (as runc builds it); a process file says for itself.
        if processFile == nil {
            config.process.args = command
            config.process.terminal = tty
        }
        if let workingDirectory { config.process.cwd = workingDirectory }
        if tty { config.process.terminal = true }
        try OCIConsole.check(terminal: config.process.terminal, socket: consoleSocket, source: processFile ?? "exec (whose --tty sets it)")
        let sandbox = try OCICreate.sandbox(config, directory: OCIContainerRecord.directory(root: lifecycle.root, id: record.id))
        var options = try OCIProcessOptions.spawnOptions(config, sandbox: sandbox)
        if let user = record.ephemeralUser {
            options.credentials = OCIEphemeralUser.credentials(uid: user.uid, gid: user.gid)
        }
        for fd in 0..<Int32(preservedDescriptors) { options.extraDescriptors[3 + fd] = FileDescriptor(rawValue: 3 + fd) }

        let namespace = open("/proc/\(record.initProcess.pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
        // Checked after the open: the namespace is init's, not a later
        // process's that took its pid.
        guard namespace >= 0, record.initProcess.isAlive else {
            if namespace >= 0 { close(namespace) }
            throw OCIRuntimeError("cannot exec in container \(record.id): its init has exited")
        }
        defer { close(namespace) }
        options.mountNamespace = .joining(FileDescriptor(rawValue: namespace), mounted: options.mountNamespace?.mounts ?? [])

        let job = try lifecycle.openJob()
        let terminal = try OCIConsole.attach(&options, socketPath: consoleSocket, size: config.process.consoleSize)
        defer { try? terminal?.close() }
        let process: ProcessHandle
        do {
            process = try job.spawn(options)
        } catch {
            throw OCIRuntimeError(error.message)
        }
        job.detach()
        if let pidFile { try OCICreate.writePidFile(pidFile, pid: process.pid) }
        if detach { return 0 }
        let exit = (try? OCIRuntime.wait { await process.wait() }) ?? .exited(code: 1)
        return exit.shellStatus
    }
}

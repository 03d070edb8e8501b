import Glibc
import JobObjects
import JobObjectsPayload
import SystemPackage

/// `create --bundle B --pid-file P [--console-socket S] [--preserve-fds N]
/// ID`: the container's job at `linux.cgroupsPath` (a cgroupfs path, or
/// under `--systemd-cgroup` a scope systemd makes), and its init in it — identity, mounts,
/// capabilities and seccomp applied — waiting at its start gate (a FIFO in
/// the state directory that `start` writes to). The pid written to P is
/// init's own. Everything made is recorded for `delete`, and undone here
/// if a later step fails.
struct OCICreate {
    let root: String
    let id: String
    let bundle: String
    let pidFile: String?
    let consoleSocket: String?
    let preservedDescriptors: Int
    /// `--systemd-cgroup`: the job goes in a scope systemd makes (`OCISystemdScope`).
    let systemdCgroup: Bool
    /// The process whose end ends the container (`OCIOwnerWatch`): create's
    /// caller, or `run` itself while it waits in the foreground.
    var owner: pid_t = getppid()

    /// The default sandbox mount point's parent: where a container's
    /// payload directory appears unless `jobobjects.io/sandbox-mount-point`
    /// says otherwise.
    static let sandboxAnnotation = "jobobjects.io/sandbox-mount-point"
    static let graceAnnotation = "jobobjects.io/grace"
    static let defaultGraceSeconds = 30

    init(root: String, arguments: OCIArguments, systemdCgroup: Bool) throws(OCIRuntimeError) {
        self.root = root
        self.systemdCgroup = systemdCgroup
        id = try arguments.containerID("create")
        var bundle = arguments["bundle"] ?? "."
        if !bundle.hasPrefix("/") { bundle = Self.currentDirectory() + "/" + bundle }
        self.bundle = bundle
        pidFile = arguments["pid-file"]
        consoleSocket = arguments["console-socket"]
        guard let count = Int(arguments["preserve-fds"] ?? "0"), count >= 0, count <= 60 else {
            throw OCIRuntimeError("--preserve-fds must be a number from 0 to 60")
        }
        preservedDescriptors = count
        for (name, value) in [("bundle", bundle), ("pid-file", pidFile ?? "")] where value.contains("\n") {
            throw OCIRuntimeError("--\(name) must not contain a newline")
        }
    }

    /// Creates the container; returns its init, a child of this process.
    @discardableResult
    func run() throws(OCIRuntimeError) -> ProcessHandle {
        let config: OCIConfig
        do {
            config = try OCIConfig.load(bundle: FilePath(bundle))
        } catch {
            throw OCIRuntimeError(error.message)
        }
        guard config.namespaces.mount else {
            throw OCIRuntimeError(
                "\(bundle)/config.json: linux.namespaces has no mount namespace; jobsup-runc mounts the payload directory in a private one (add {\"type\": \"mount\"})"
            )
        }
        try OCIConsole.check(terminal: config.process.terminal, socket: consoleSocket, source: bundle + "/config.json")
        // The containerd shim's root (/run/containerd/runc/NAMESPACE) may
        // not exist yet: runc makes every level.
        var level = ""
        for part in root.split(separator: "/") {
            level += "/" + part
            try makeDirectory(level, mode: 0o711, existing: true)
        }
        let directory = OCIContainerRecord.directory(root: root, id: id)
        guard mkdir(directory, 0o711) == 0 else {
            if errno == EEXIST { throw OCIRuntimeError("container \(id) already exists") }
            throw OCIRuntimeError("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        var undo = OCIUndo()
        undo.add { OCIUndo.removeStateDirectory(directory) }
        do throws(OCIRuntimeError) {
            let process = try create(config, directory: directory, undo: &undo)
            undo.dismiss()
            return process
        } catch {
            undo.run()
            throw error
        }
    }

    private func create(_ config: OCIConfig, directory: String, undo: inout OCIUndo) throws(OCIRuntimeError) -> ProcessHandle {
        let sandbox = try Self.sandbox(config, directory: directory)
        var madeSandbox: String?
        if access(sandbox, F_OK) != 0 {
            try makeDirectory(sandbox, mode: 0o755, existing: false)
            madeSandbox = sandbox
            undo.add { _ = rmdir(sandbox) }
        }
        let grace = try graceSeconds(config)
        let watchesOwner = try OCIOwnerWatch.isWanted(config.annotation(OCIOwnerWatch.annotation))
        let ephemeralGroup = try OCIEphemeralUser.group(config.annotation(OCIEphemeralUser.annotation))

        let job: JobObject
        let madeLevels: [String]
        var leaveScope: (() -> Void)?
        if systemdCgroup {
            let systemd = try OCISystemdScope(cgroupsPath: config.cgroupsPath, id: id)
            let entered = try systemd.enter(id: id)
            let leave = { systemd.leave(origin: entered.origin, scope: entered.scope) }
            undo.add(leave)
            leaveScope = leave
            madeLevels = [entered.scope + "/" + OCISystemdScope.leafName]
            job = try Self.makeJob(name: id, parent: entered.scope, config)
        } else {
            let placement = try OCICgroupPlacement(cgroupsPath: config.cgroupsPath, id: id)
            let made = try placement.makeParentLevels()
            undo.add { placement.removeLevels(made) }
            madeLevels = made
            job = try Self.makeJob(name: placement.name, parent: placement.parent, config)
        }
        let cgroupPath = job.path.string
        let cgroupID = OCICgroupPlacement.inode(cgroupPath) ?? 0
        undo.add { _ = AbandonedJob.killAndRemove(path: cgroupPath, cgroupID: cgroupID) }

        let fifo = OCIContainerRecord.fifo(root: root, id: id)
        guard mkfifo(fifo, 0o600) == 0 else { throw OCIRuntimeError("cannot make \(fifo): \(String(cString: strerror(errno)))") }
        // Read and write, so that opening it never blocks and init's read
        // waits for `start`'s byte, not for a writer to come.
        let gate = open(fifo, O_RDWR | O_CLOEXEC)
        guard gate >= 0 else { throw OCIRuntimeError("cannot open \(fifo): \(String(cString: strerror(errno)))") }
        defer { close(gate) }

        var options = try OCIProcessOptions.spawnOptions(config, sandbox: sandbox)
        if OCISandboxHold.isPodSandbox(annotation: config.annotation) {
            options.executable = try Self.ownExecutable()
            options.argument0 = "jobsup-runc"
            options.arguments = [OCISandboxHold.command]
        }
        // The lease is released when create returns; init runs as the uid by then.
        let ephemeralUser = try ephemeralGroup.map { gid throws(OCIRuntimeError) in
            (lease: try OCIEphemeralUser.allocate(id: id), gid: gid)
        }
        if let ephemeralUser {
            options.credentials = OCIEphemeralUser.credentials(uid: ephemeralUser.lease.uid, gid: ephemeralUser.gid)
        }
        options.startGate = FileDescriptor(rawValue: gate)
        for fd in 0..<Int32(preservedDescriptors) { options.extraDescriptors[3 + fd] = FileDescriptor(rawValue: 3 + fd) }
        let terminal = try OCIConsole.attach(&options, socketPath: consoleSocket, size: config.process.consoleSize)
        defer { try? terminal?.close() }
        let process: ProcessHandle
        do {
            process = try job.spawn(options)
        } catch {
            throw OCIRuntimeError(error.message)
        }
        if let adjustment = config.process.oomScoreAdj {
            let fd = open("/proc/\(process.pid)/oom_score_adj", O_WRONLY | O_CLOEXEC)
            let written = fd >= 0 && (try? FileContents.write(fd: fd, String(adjustment)).get()) != nil
            if fd >= 0 { close(fd) }
            if !written {
                throw OCIRuntimeError(
                    "process.oomScoreAdj \(adjustment) cannot be set: lowering it needs CAP_SYS_RESOURCE, which this runtime lacks")
            }
        }
        guard let identity = ProcessIdentity(pid: process.pid) else { throw OCIRuntimeError("init exited at once") }
        job.detach()
        leaveScope?()

        let record = OCIContainerRecord(
            id: id, initProcess: identity, bundle: bundle, rootfs: config.rootPath, cgroup: cgroupPath, cgroupID: cgroupID,
            madeLevels: madeLevels, madeSandbox: madeSandbox, created: OCIRuntimeLog.timestamp(), graceSeconds: grace,
            annotationsJSON: JSONObject.object(config.annotations),
            ephemeralUser: ephemeralUser.map { ($0.lease.uid, $0.gid) })
        try record.write(root: root)
        // The owner is the engine's process that ran create; as init's, the
        // kernel's init owns nothing worth watching.
        if watchesOwner, owner != 1, let owner = ProcessIdentity(pid: owner) {
            try OCIOwnerWatch.start(root: root, id: id, owner: owner)
        }
        if let pidFile { try Self.writePidFile(pidFile, pid: process.pid) }
        return process
    }

    /// The container's job, limited by `linux.resources`; it outlives this
    /// process (`delete` removes it).
    private static func makeJob(name: String, parent: String, _ config: OCIConfig) throws(OCIRuntimeError) -> JobObject {
        do {
            return try JobObject.create(
                name: name, parent: FilePath(parent), limits: config.limits, killOnClose: false, trackDescendants: false)
        } catch {
            throw OCIRuntimeError(error.message)
        }
    }

    /// Where the payload directory appears: the annotation's path, else
    /// `sandbox` in the container's state directory.
    static func sandbox(_ config: OCIConfig, directory: String) throws(OCIRuntimeError) -> String {
        let sandbox = config.annotation(sandboxAnnotation) ?? directory + "/sandbox"
        guard sandbox.hasPrefix("/"), !sandbox.contains("\n") else {
            throw OCIRuntimeError("annotation \(sandboxAnnotation) must be an absolute path")
        }
        return sandbox
    }

    private func graceSeconds(_ config: OCIConfig) throws(OCIRuntimeError) -> Int {
        guard let text = config.annotation(Self.graceAnnotation) else { return Self.defaultGraceSeconds }
        guard let seconds = Int(text), seconds >= 0, seconds <= 86_400 else {
            throw OCIRuntimeError("annotation \(Self.graceAnnotation) must be whole seconds from 0 to 86400, not \"\(text.prefix(40))\"")
        }
        return seconds
    }

    /// Written whole, then renamed into place: the engine reads it as soon
    /// as create exits and must never see half a number.
    static func writePidFile(_ path: String, pid: pid_t) throws(OCIRuntimeError) {
        let temporary = path + ".jobsup-runc"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OCIRuntimeError("cannot write the pid file \(path): \(String(cString: strerror(errno)))") }
        Diagnostics.write(fd, String(pid))
        close(fd)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw OCIRuntimeError("cannot write the pid file \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func makeDirectory(_ path: String, mode: mode_t, existing: Bool) throws(OCIRuntimeError) {
        if mkdir(path, mode) == 0 || (existing && errno == EEXIST) { return }
        throw OCIRuntimeError("cannot create \(path): \(String(cString: strerror(errno)))")
    }

    /// This executable's path, for init to run it again.
    static func ownExecutable() throws(OCIRuntimeError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { throw OCIRuntimeError("cannot find this executable (/proc/self/exe): \(String(cString: strerror(errno)))") }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Steps that undo what a failed create made, last made first.
struct OCIUndo {
    private var steps: [() -> Void] = []

    mutating func add(_ step: @escaping () -> Void) { steps.append(step) }
    mutating func dismiss() { steps = [] }
    func run() { for step in steps.reversed() { step() } }

    /// The state directory and the files create puts in it.
    static func removeStateDirectory(_ directory: String) {
        for name in ["state", "state.new", "start"] { unlink(directory + "/" + name) }
        rmdir(directory)
    }
}

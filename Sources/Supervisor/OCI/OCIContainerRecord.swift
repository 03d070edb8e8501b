import Glibc
import JobObjects

/// What `create` made for one container, kept in `ROOT/ID/state` so that
/// the later commands (each a new process) can find and undo it: init's
/// identity, the job, the cgroup levels and sandbox directory it made.
/// One `key value` line per fact; values never hold a newline (paths with
/// one are refused at create).
struct OCIContainerRecord {
    var id: String
    var initProcess: ProcessIdentity
    var bundle: String
    var rootfs: String
    /// The job's cgroup directory, and its inode (a later cgroup at the
    /// same path is not this container's).
    var cgroup: String
    var cgroupID: UInt64
    /// Cgroup levels above the job that create made, outermost first.
    var madeLevels: [String]
    /// The sandbox mount point, when create made its directory.
    var madeSandbox: String?
    var created: String
    var graceSeconds: Int
    /// The config's annotations, as a JSON object.
    var annotationsJSON: String
    /// The uid and gid every process of the container runs as, when it has
    /// an ephemeral user (`OCIEphemeralUser`).
    var ephemeralUser: (uid: uid_t, gid: gid_t)? = nil

    /// The container's state directory under the runtime's root.
    static func directory(root: String, id: String) -> String { root + "/" + id }
    static func fifo(root: String, id: String) -> String { directory(root: root, id: id) + "/start" }

    func write(root: String) throws(OCIRuntimeError) {
        var lines = [
            "pid \(initProcess.pid)", "start \(initProcess.startTime)", "bundle \(bundle)", "rootfs \(rootfs)",
            "cgroup \(cgroup)", "cgroup-id \(cgroupID)", "created \(created)", "grace \(graceSeconds)",
            "annotations \(annotationsJSON)",
        ]
        lines += madeLevels.map { "made \($0)" }
        if let madeSandbox { lines.append("sandbox \(madeSandbox)") }
        if let ephemeralUser { lines.append("ephemeral-user \(ephemeralUser.uid) \(ephemeralUser.gid)") }
        let directory = Self.directory(root: root, id: id)
        let temporary = directory + "/state.new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw OCIRuntimeError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        Diagnostics.write(fd, lines.joined(separator: "\n") + "\n")
        let synced = fsync(fd) == 0
        close(fd)
        guard synced, rename(temporary, directory + "/state") == 0 else {
            throw OCIRuntimeError("cannot write \(directory)/state: \(String(cString: strerror(errno)))")
        }
    }

    /// The record of container `id`; "does not exist" (the words podman and
    /// the containerd shim look for) when there is none.
    static func read(root: String, id: String) throws(OCIRuntimeError) -> OCIContainerRecord {
        let path = directory(root: root, id: id) + "/state"
        guard case .success(let text) = FileContents.read(path) else {
            throw OCIRuntimeError("container \(id) does not exist")
        }
        var fields: [String: String] = [:]
        var levels: [String] = []
        for line in text.split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let key = String(line[..<space])
            let value = String(line[line.index(after: space)...])
            if key == "made" { levels.append(value) } else { fields[key] = value }
        }
        guard let pid = fields["pid"].flatMap({ pid_t($0) }), let start = fields["start"].flatMap({ UInt64($0) }),
            let cgroup = fields["cgroup"], let cgroupID = fields["cgroup-id"].flatMap({ UInt64($0) })
        else { throw OCIRuntimeError("the state of container \(id) (\(path)) is damaged; delete --force removes it") }
        return OCIContainerRecord(
            id: id, initProcess: ProcessIdentity(pid: pid, startTime: start), bundle: fields["bundle"] ?? "",
            rootfs: fields["rootfs"] ?? "", cgroup: cgroup, cgroupID: cgroupID, madeLevels: levels,
            madeSandbox: fields["sandbox"], created: fields["created"] ?? "",
            graceSeconds: fields["grace"].flatMap { Int($0) } ?? 0, annotationsJSON: fields["annotations"] ?? "{}",
            ephemeralUser: fields["ephemeral-user"].flatMap(Self.ids))
    }

    /// "UID GID" as numbers.
    private static func ids(_ text: String) -> (uid: uid_t, gid: gid_t)? {
        let parts = text.split(separator: " ")
        guard parts.count == 2, let uid = uid_t(parts[0]), let gid = gid_t(parts[1]) else { return nil }
        return (uid, gid)
    }

    /// The OCI status: `created` while init waits at its gate, `paused`
    /// while the job is frozen, `running`, or `stopped` once init is gone.
    func status(root: String) -> String {
        guard initProcess.isAlive else { return "stopped" }
        if access(Self.fifo(root: root, id: id), F_OK) == 0 { return "created" }
        if case .success(let frozen) = FileContents.read(cgroup + "/cgroup.freeze"), frozen.hasPrefix("1") { return "paused" }
        return "running"
    }

    /// The state JSON of the runtime spec (`state` prints it, `list
    /// --format json` lists it).
    func stateJSON(root: String) -> String {
        let status = status(root: root)
        var object = JSONObject()
        object.add("ociVersion", "1.0.2")
        object.add("id", id)
        object.add("status", status)
        object.add("pid", status == "stopped" ? 0 : initProcess.pid)
        object.add("bundle", bundle)
        object.add("rootfs", rootfs)
        object.add("created", created)
        object.add("owner", "")
        object.addRaw("annotations", annotationsJSON)
        return object.text
    }
}

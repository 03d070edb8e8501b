import Glibc
import JobObjects
import JobObjectsPayload

/// `list` and `features`: what the runtime can tell without a container.
enum OCIQueries {
    static func list(root: String, json: Bool, quiet: Bool) {
        var records: [OCIContainerRecord] = []
        if case .success(let names) = Syscall.listDirectory(root, directoriesOnly: true) {
            for name in names.sorted() {
                if let record = try? OCIContainerRecord.read(root: root, id: name) { records.append(record) }
            }
        }
        if json {
            print(JSONObject.array(records.map { $0.stateJSON(root: root) }))
        } else if quiet {
            for record in records { print(record.id) }
        } else {
            print("ID\tPID\tSTATUS\tBUNDLE\tCREATED")
            for record in records {
                let status = record.status(root: root)
                print("\(record.id)\t\(status == "stopped" ? 0 : record.initProcess.pid)\t\(status)\t\(record.bundle)\t\(record.created)")
            }
        }
    }

    /// The runtime-spec's Features document: what a config may ask for.
    static let featuresJSON: String = {
        var linux = JSONObject()
        linux.addRaw("namespaces", JSONObject.array(["\"mount\"", "\"cgroup\""]))
        linux.addRaw(
            "capabilities", JSONObject.array(Capability.all.sorted { $0.rawValue < $1.rawValue }.map { JSONObject.quoted($0.name) }))
        var cgroup = JSONObject()
        cgroup.add("v1", false)
        cgroup.add("v2", true)
        cgroup.add("systemd", true)
        cgroup.add("systemdUser", false)
        linux.addRaw("cgroup", cgroup.text)
        var seccomp = JSONObject()
        seccomp.add("enabled", true)
        linux.addRaw("seccomp", seccomp.text)
        var annotations = JSONObject()
        annotations.add("org.opencontainers.runc.version", "none: jobsup-runc \(JobsupVersion.text)")
        annotations.add("io.github.jobobjects.hostprocess", "processes run on the host, in a job object")
        annotations.add("io.github.jobobjects.devices", "the host's devices")
        var features = JSONObject()
        features.add("ociVersionMin", "1.0.0")
        features.add("ociVersionMax", "1.1.0")
        features.addRaw("hooks", "[]")
        features.addRaw("mountOptions", JSONObject.array(["\"bind\"", "\"rbind\"", "\"ro\"", "\"rw\""]))
        features.addRaw("linux", linux.text)
        features.addRaw("annotations", annotations.text)
        return features.text
    }()
}

import Glibc
import JobObjects

/// Reads an OCI `config.json` into `OCIConfig`, collecting every problem.
/// Unknown properties are skipped (runtime-spec: a runtime must not fail
/// on them); a known one of the wrong type, or one a host process cannot
/// honour, is a problem naming its field.
struct OCIConfigReader {
    private var d: DocumentReader
    private let bundle: String
    var problems: [PayloadProblem] { d.problems }

    init(file: String, bundle: String) {
        d = DocumentReader(file: file)
        self.bundle = bundle
    }

    mutating func read(_ text: String) -> OCIConfig? {
        guard let root = d.parse(text), let top = d.openMapping(root, "") else { return nil }
        let version = top["ociVersion"].flatMap { d.string($0, "ociVersion") }
        if top["ociVersion"] == nil { d.report("ociVersion", root, "is required (e.g. \"1.0.2\")") }
        var process = OCIConfig.Process()
        if let node = top["process"] {
            process = readProcess(node)
        } else {
            d.report("process", root, "is required: the runtime starts the payload's init from it")
        }
        var rootPath = ""
        var rootReadOnly = false
        if let node = top["root"], let entries = d.openMapping(node, "root") {
            if let path = entries["path"].flatMap({ d.string($0, "root.path") }) {
                rootPath = path.hasPrefix("/") ? path : bundle + "/" + path
                if !isDirectory(rootPath) {
                    d.report("root.path", node, "\(rootPath) is not a directory (the payload directory to run)")
                }
            } else if entries["path"] == nil {
                d.report("root.path", node, "is required: the payload directory")
            }
            rootReadOnly = entries["readonly"].flatMap { d.bool($0, "root.readonly") } ?? false
        } else if top["root"] == nil {
            d.report("root", root, "is required: root.path is the payload directory")
        }
        var mounts: [OCIConfig.BindMount] = []
        if let node = top["mounts"] { mounts = readMounts(node) }
        if let node = top["hooks"] { checkHooks(node) }
        var namespaces = OCIConfig.Namespaces()
        var cgroupsPath: String?
        var limits = JobLimits()
        var seccomp: SeccompProfile?
        if let node = top["linux"], let linux = d.openMapping(node, "linux") {
            if let list = linux["namespaces"] { namespaces = readNamespaces(list) }
            cgroupsPath = linux["cgroupsPath"].flatMap { d.string($0, "linux.cgroupsPath") }
            if let resources = linux["resources"] { limits = OCIResourcesReader.read(resources, &d, "linux.resources") }
            if let profile = linux["seccomp"] { seccomp = readSeccomp(profile) }
            for key in ["uidMappings", "gidMappings"] {
                if let list = linux[key], let items = d.sequence(list, "linux." + key), !items.isEmpty {
                    d.report("linux." + key, list, "id mappings need a user namespace, which host processes do not get")
                }
            }
            if let node = linux["sysctl"], case .mapping(let entries, _) = node, !entries.isEmpty {
                d.report("linux.sysctl", node, "would change the host's own kernel settings: set them on the node, not per payload")
            }
        }
        var annotations: [(key: String, value: String)] = []
        if let node = top["annotations"], let entries = d.orderedMapping(node, "annotations") {
            for (key, value) in entries {
                if let text = d.string(value, DocumentReader.join("annotations", key)) { annotations.append((key, text)) }
            }
        }
        guard problems.isEmpty, let version else { return nil }
        return OCIConfig(
            ociVersion: version, process: process, rootPath: rootPath, rootReadOnly: rootReadOnly, mounts: mounts,
            namespaces: namespaces, cgroupsPath: cgroupsPath, limits: limits, seccomp: seccomp, annotations: annotations)
    }

    // MARK: process

    /// A `process` object alone, as `exec --process FILE` gives it.
    mutating func readProcessDocument(_ text: String) -> OCIConfig.Process? {
        guard let root = d.parse(text) else { return nil }
        let process = readProcess(root)
        return problems.isEmpty ? process : nil
    }

    private mutating func readProcess(_ node: YAMLNode) -> OCIConfig.Process {
        var process = OCIConfig.Process()
        guard let entries = d.openMapping(node, "process") else { return process }
        process.terminal = entries["terminal"].flatMap { d.bool($0, "process.terminal") } ?? false
        if let size = entries["consoleSize"], let fields = d.openMapping(size, "process.consoleSize") {
            func dimension(_ name: String) -> UInt16 {
                guard let node = fields[name] else { return 0 }
                let field = "process.consoleSize." + name
                guard let value = d.int(node, field) else { return 0 }
                guard (0...Int(UInt16.max)).contains(value) else {
                    d.report(field, node, "must be from 0 to \(UInt16.max)")
                    return 0
                }
                return UInt16(value)
            }
            process.consoleSize = (rows: dimension("height"), columns: dimension("width"))
        }
        if let args = entries["args"].flatMap({ d.strings($0, "process.args") }) {
            if args.isEmpty { d.report("process.args", node, "must name the program to run") }
            process.args = args
        } else if entries["args"] == nil {
            d.report("process.args", node, "is required: the program to run and its arguments")
        }
        process.env = entries["env"].flatMap { d.strings($0, "process.env") } ?? []
        for (i, entry) in process.env.enumerated() where !entry.contains("=") {
            d.report(DocumentReader.index("process.env", i), node, "\"\(entry)\" is not NAME=value")
        }
        if let cwd = entries["cwd"].flatMap({ d.string($0, "process.cwd") }) {
            if !cwd.hasPrefix("/") { d.report("process.cwd", node, "must be an absolute path") }
            process.cwd = cwd
        }
        if let user = entries["user"] { process.user = readUser(user) }
        if let caps = entries["capabilities"] { process.capabilities = readCapabilities(caps) }
        process.noNewPrivileges = entries["noNewPrivileges"].flatMap { d.bool($0, "process.noNewPrivileges") } ?? false
        if let list = entries["rlimits"], let items = d.sequence(list, "process.rlimits") {
            for (i, item) in items.enumerated() {
                if let limit = readRlimit(item, DocumentReader.index("process.rlimits", i)) { process.rlimits.append(limit) }
            }
        }
        if let node = entries["oomScoreAdj"], let value = d.int(node, "process.oomScoreAdj") {
            if !(-1000...1000).contains(value) { d.report("process.oomScoreAdj", node, "must be from -1000 to 1000") }
            process.oomScoreAdj = value
        }
        return process
    }

    private mutating func readUser(_ node: YAMLNode) -> OCIConfig.User {
        var user = OCIConfig.User(uid: 0, gid: 0, additionalGids: [])
        guard let entries = d.openMapping(node, "process.user") else { return user }
        user.uid = entries["uid"].flatMap { id($0, "process.user.uid") } ?? 0
        user.gid = entries["gid"].flatMap { id($0, "process.user.gid") } ?? 0
        if let list = entries["additionalGids"], let items = d.sequence(list, "process.user.additionalGids") {
            user.additionalGids = items.enumerated().compactMap { id($1, DocumentReader.index("process.user.additionalGids", $0)) }
        }
        return user
    }

    /// A uid or gid: 0 to 4294967294 (4294967295 is (uid_t)-1, "no change").
    private mutating func id(_ node: YAMLNode, _ field: String) -> UInt32? {
        guard let value = d.uint64(node, field) else { return nil }
        guard value < UInt64(UInt32.max) else {
            d.report(field, node, "must be from 0 to 4294967294")
            return nil
        }
        return UInt32(value)
    }

    /// The permitted set is what the payload keeps (bounding, effective and
    /// ambient as well: a host process has one set of capabilities).
    private mutating func readCapabilities(_ node: YAMLNode) -> Set<Capability> {
        guard let entries = d.openMapping(node, "process.capabilities") else { return [] }
        guard let list = entries["permitted"] ?? entries["bounding"] else { return [] }
        let field = entries["permitted"] != nil ? "process.capabilities.permitted" : "process.capabilities.bounding"
        guard let names = d.strings(list, field) else { return [] }
        var kept = Set<Capability>()
        for (i, name) in names.enumerated() {
            do throws(JobObjectError) {
                kept.insert(try Capability(name: name))
            } catch {
                d.report(DocumentReader.index(field, i), list, error.message)
            }
        }
        return kept
    }

    private mutating func readRlimit(_ node: YAMLNode, _ field: String) -> ResourceLimit? {
        guard let entries = d.openMapping(node, field) else { return nil }
        guard let type = entries["type"].flatMap({ d.string($0, field + ".type") }) else {
            if entries["type"] == nil { d.report(field + ".type", node, "is required (e.g. RLIMIT_NOFILE)") }
            return nil
        }
        guard type.hasPrefix("RLIMIT_"), let name = ResourceLimitName(rawValue: String(type.dropFirst(7)).lowercased()) else {
            d.report(field + ".type", node, "unknown resource \"\(type)\" (RLIMIT_ and one of: \(ResourceLimitName.allNames))")
            return nil
        }
        let soft = entries["soft"].flatMap { d.uint64($0, field + ".soft") }
        let hard = entries["hard"].flatMap { d.uint64($0, field + ".hard") }
        guard let soft, let hard else {
            if entries["soft"] == nil || entries["hard"] == nil { d.report(field, node, "needs both soft and hard") }
            return nil
        }
        return ResourceLimit(resource: name.resource, soft: soft, hard: hard)
    }

    // MARK: mounts, hooks, namespaces, seccomp

    /// Bind mounts become the payload's volumes; every other type is a
    /// filesystem the host has already (proc, sysfs, tmpfs, devpts, …).
    private mutating func readMounts(_ node: YAMLNode) -> [OCIConfig.BindMount] {
        guard let items = d.sequence(node, "mounts") else { return [] }
        var mounts: [OCIConfig.BindMount] = []
        for (i, item) in items.enumerated() {
            let field = DocumentReader.index("mounts", i)
            guard let entries = d.openMapping(item, field) else { continue }
            let type = entries["type"].flatMap { d.string($0, field + ".type") } ?? ""
            let options = entries["options"].flatMap { d.strings($0, field + ".options") } ?? []
            guard type == "bind" || options.contains("bind") || options.contains("rbind") else { continue }
            guard let destination = entries["destination"].flatMap({ d.string($0, field + ".destination") }),
                let source = entries["source"].flatMap({ d.string($0, field + ".source") })
            else {
                d.report(field, item, "a bind mount needs source and destination")
                continue
            }
            if !destination.hasPrefix("/") || !source.hasPrefix("/") {
                d.report(field, item, "source and destination must be absolute paths")
                continue
            }
            mounts.append(OCIConfig.BindMount(destination: destination, source: source, readOnly: options.contains("ro")))
        }
        return mounts
    }

    private mutating func checkHooks(_ node: YAMLNode) {
        guard let entries = d.orderedMapping(node, "hooks") else { return }
        for (name, value) in entries {
            if case .sequence(let items, _) = value, items.isEmpty { continue }
            d.report(
                DocumentReader.join("hooks", name), value,
                "hooks are not run: a payload runs on the host, so do the work in its init or on the node")
        }
    }

    /// Host processes share the host's pid, network, ipc, uts, user and
    /// time namespaces: a new one, or another one's path, is refused.
    private mutating func readNamespaces(_ node: YAMLNode) -> OCIConfig.Namespaces {
        var namespaces = OCIConfig.Namespaces()
        guard let items = d.sequence(node, "linux.namespaces") else { return namespaces }
        let hostFlags = [
            "pid": "podman --pid host; Kubernetes hostPID: true", "network": "podman --network host; Kubernetes hostNetwork: true",
            "ipc": "podman --ipc host; Kubernetes hostIPC: true", "uts": "podman --uts host", "user": "no --userns",
            "time": "no time namespace",
        ]
        for (i, item) in items.enumerated() {
            let field = DocumentReader.index("linux.namespaces", i)
            guard let entries = d.openMapping(item, field),
                let type = entries["type"].flatMap({ d.string($0, field + ".type") })
            else { continue }
            let path = entries["path"].flatMap { d.string($0, field + ".path") }
            let kernelName = ["network": "net", "mount": "mnt"][type] ?? type
            if let path {
                if access(path, F_OK) != 0 {
                    d.report(
                        field + ".path", item,
                        "\(path) cannot be read (\(String(cString: strerror(errno)))): give the host's \(type) namespace")
                } else if !Self.isHostNamespace(path, kernelName) {
                    d.report(field + ".path", item, "\(path) is not the host's \(type) namespace: a payload runs in the host's")
                }
                continue
            }
            switch type {
            case "mount": namespaces.mount = true
            case "cgroup": namespaces.cgroup = true
            default:
                if let how = hostFlags[type] {
                    d.report(field, item, "a new \(type) namespace cannot be given to host processes; ask for the host's (\(how))")
                } else {
                    d.report(field + ".type", item, "unknown namespace type \"\(type)\"")
                }
            }
        }
        return namespaces
    }

    /// Whether `path` names the same namespace as this process's own.
    static func isHostNamespace(_ path: String, _ kernelName: String) -> Bool {
        var given = stat()
        var own = stat()
        guard stat(path, &given) == 0, stat("/proc/self/ns/\(kernelName)", &own) == 0 else { return false }
        return given.st_ino == own.st_ino && given.st_dev == own.st_dev
    }

    /// `linux.seccomp` is a seccomp profile of the same shape `jobsup run -f`
    /// reads: its node is written back as JSON and read by that reader.
    private mutating func readSeccomp(_ node: YAMLNode) -> SeccompProfile? {
        let (profile, problems) = SeccompProfile.read(node.jsonText, file: "linux.seccomp")
        for problem in problems {
            d.report(DocumentReader.join("linux.seccomp", problem.field), node, problem.message)
        }
        return profile
    }

    private func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}

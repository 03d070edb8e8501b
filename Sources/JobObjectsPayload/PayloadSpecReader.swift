import JobObjects

/// Builds a `PayloadSpec` from a YAML or JSON document, key by key, with
/// every unknown key and wrong type reported (see `DocumentReader`).
struct SpecReader {
    private var document: DocumentReader

    init(file: String) { document = DocumentReader(file: file) }

    var problems: [PayloadProblem] { document.problems }

    static let topKeys = [
        "name", "payload", "command", "args", "env", "workingDir", "resources", "securityContext",
        "volumeMounts", "sandbox", "terminationGracePeriodSeconds", "hostNetwork", "hostPID",
    ]

    /// The spec, or nil when a required field is missing or malformed (the
    /// problems say which).
    mutating func readSpec(_ text: String, baseDirectory: String?) -> PayloadSpec? {
        guard let root = document.parse(text), let top = document.mapping(root, "", keys: Self.topKeys) else { return nil }
        var complete = true
        func required<T>(_ key: String, _ read: (inout DocumentReader, YAMLNode, String) -> T?) -> T? {
            guard let node = top[key] else {
                document.report(key, line: root.line, "is required")
                complete = false
                return nil
            }
            let value = read(&document, node, key)
            if value == nil { complete = false }
            return value
        }
        func optional<T>(_ key: String, _ read: (inout DocumentReader, YAMLNode, String) -> T?) -> T? {
            guard let node = top[key] else { return nil }
            let value = read(&document, node, key)
            if value == nil { complete = false }
            return value
        }

        let name = required("name") { $0.string($1, $2) }
        let payload = required("payload") { $0.string($1, $2) }
        let command = required("command") { $0.strings($1, $2) }
        let args = optional("args") { $0.strings($1, $2) } ?? []
        let env = optional("env") { Self.readEnv(&$0, $1, $2) } ?? []
        let workingDir = optional("workingDir") { $0.string($1, $2) }
        let resources = optional("resources") { Self.readResources(&$0, $1, $2) } ?? PayloadSpec.Resources()
        let security = optional("securityContext") { Self.readSecurity(&$0, $1, $2) } ?? PayloadSpec.SecurityContext()
        let volumes = optional("volumeMounts") { Self.readVolumes(&$0, $1, $2) } ?? []
        let sandbox = optional("sandbox") { Self.readSandbox(&$0, $1, $2) } ?? PayloadSpec.Sandbox()
        let grace = optional("terminationGracePeriodSeconds") { $0.int($1, $2) } ?? 5
        for key in ["hostNetwork", "hostPID"] {
            if let node = top[key], let value = document.bool(node, key), !value {
                document.report(
                    key, node,
                    "a payload always shares the host's \(key == "hostPID" ? "PID namespace" : "network"); remove the key or set it to true"
                )
            }
        }

        guard complete, let name, let payload, let command else { return nil }
        var spec = PayloadSpec(
            name: name, payload: payload, command: command, args: args, env: env,
            workingDir: workingDir, resources: resources, securityContext: security,
            volumeMounts: volumes, sandbox: sandbox, terminationGracePeriodSeconds: grace,
            baseDirectory: baseDirectory)
        spec.locations = SpecLocations(file: document.file, lines: document.lines)
        return spec
    }

    private static func readEnv(_ d: inout DocumentReader, _ node: YAMLNode, _ path: String) -> [PayloadSpec.EnvVar]? {
        guard let items = d.sequence(node, path) else { return nil }
        var vars: [PayloadSpec.EnvVar] = []
        var ok = true
        for (i, item) in items.enumerated() {
            let field = DocumentReader.index(path, i)
            guard let entry = d.mapping(item, field, keys: ["name", "value"]) else {
                ok = false
                continue
            }
            guard let nameNode = entry["name"] else {
                d.report(DocumentReader.join(field, "name"), item, "is required")
                ok = false
                continue
            }
            let name = d.string(nameNode, DocumentReader.join(field, "name"))
            let value = entry["value"].flatMap { d.string($0, DocumentReader.join(field, "value")) } ?? ""
            if let name { vars.append(.init(name: name, value: value)) } else { ok = false }
        }
        return ok ? vars : nil
    }

    private static func readResources(_ d: inout DocumentReader, _ node: YAMLNode, _ path: String) -> PayloadSpec.Resources? {
        guard let entries = d.mapping(node, path, keys: ["limits", "requests"]) else { return nil }
        var resources = PayloadSpec.Resources()
        var ok = true
        for key in ["limits", "requests"] {
            guard let listNode = entries[key] else { continue }
            let field = DocumentReader.join(path, key)
            guard let list = d.mapping(listNode, field, keys: ["memory", "cpu", "pids"]) else {
                ok = false
                continue
            }
            var value = PayloadSpec.ResourceList()
            if let n = list["memory"] {
                value.memory = d.string(n, DocumentReader.join(field, "memory"))
                ok = ok && value.memory != nil
            }
            if let n = list["cpu"] {
                value.cpu = d.string(n, DocumentReader.join(field, "cpu"))
                ok = ok && value.cpu != nil
            }
            if let n = list["pids"] {
                value.pids = d.int(n, DocumentReader.join(field, "pids"))
                ok = ok && value.pids != nil
            }
            if key == "limits" { resources.limits = value } else { resources.requests = value }
        }
        return ok ? resources : nil
    }

    static let securityKeys = [
        "runAsUser", "runAsGroup", "supplementalGroups", "ephemeralUser", "capabilities",
        "noNewPrivileges", "allowPrivilegeEscalation", "seccompProfile",
    ]

    private static func readSecurity(_ d: inout DocumentReader, _ node: YAMLNode, _ path: String) -> PayloadSpec.SecurityContext? {
        guard let entries = d.mapping(node, path, keys: Self.securityKeys) else { return nil }
        var context = PayloadSpec.SecurityContext()
        var ok = true
        func field(_ key: String) -> String { DocumentReader.join(path, key) }
        if let n = entries["runAsUser"] {
            context.runAsUser = Self.readNameOrID(&d, n, field("runAsUser"))
            ok = ok && context.runAsUser != nil
        }
        if let n = entries["runAsGroup"] {
            context.runAsGroup = Self.readNameOrID(&d, n, field("runAsGroup"))
            ok = ok && context.runAsGroup != nil
        }
        if let n = entries["supplementalGroups"] {
            if let items = d.sequence(n, field("supplementalGroups")) {
                let groups = items.enumerated().map { Self.readNameOrID(&d, $1, DocumentReader.index(field("supplementalGroups"), $0)) }
                if groups.contains(where: { $0 == nil }) { ok = false } else { context.supplementalGroups = groups.compactMap { $0 } }
            } else {
                ok = false
            }
        }
        if let n = entries["ephemeralUser"] {
            let f = field("ephemeralUser")
            if let e = d.mapping(n, f, keys: ["group", "uidRange"]) {
                let group = e["group"].flatMap { Self.readNameOrID(&d, $0, DocumentReader.join(f, "group")) }
                if e["group"] == nil { d.report(DocumentReader.join(f, "group"), n, "is required: the group the ephemeral user runs in") }
                var range = PayloadSpec.EphemeralUser.defaultRange
                if let r = e["uidRange"] {
                    if let parsed = Self.readRange(&d, r, DocumentReader.join(f, "uidRange")) { range = parsed } else { ok = false }
                }
                if let group { context.ephemeralUser = .init(group: group, uidRange: range) } else { ok = false }
            } else {
                ok = false
            }
        }
        if let n = entries["capabilities"] {
            let f = field("capabilities")
            if let c = d.mapping(n, f, keys: ["add", "drop"]) {
                let add = c["add"].map { d.strings($0, DocumentReader.join(f, "add")) } ?? []
                let drop = c["drop"].map { d.strings($0, DocumentReader.join(f, "drop")) } ?? []
                if let add, let drop { context.capabilities = .init(add: add, drop: drop) } else { ok = false }
            } else {
                ok = false
            }
        }
        let noNewPrivileges = entries["noNewPrivileges"].map { d.bool($0, field("noNewPrivileges")) }
        let allowEscalation = entries["allowPrivilegeEscalation"].map { d.bool($0, field("allowPrivilegeEscalation")) }
        if case .some(nil) = noNewPrivileges { ok = false }
        if case .some(nil) = allowEscalation { ok = false }
        if case .some(let nnp?) = noNewPrivileges, case .some(let allow?) = allowEscalation, nnp == allow {
            d.report(
                field("allowPrivilegeEscalation"), entries["allowPrivilegeEscalation"],
                "contradicts noNewPrivileges: \(nnp); give one of the two")
            ok = false
        }
        if case .some(let nnp?) = noNewPrivileges { context.noNewPrivileges = nnp }
        if case .some(let allow?) = allowEscalation { context.noNewPrivileges = !allow }
        if let n = entries["seccompProfile"] {
            let f = field("seccompProfile")
            if let s = d.mapping(n, f, keys: ["type", "localhostProfile"]) {
                let type = s["type"].flatMap { d.string($0, DocumentReader.join(f, "type")) }
                let profile = s["localhostProfile"].flatMap { d.string($0, DocumentReader.join(f, "localhostProfile")) }
                switch type {
                case "Localhost":
                    if let profile {
                        context.seccompProfile = .localhost(profile)
                    } else {
                        d.report(
                            DocumentReader.join(f, "localhostProfile"), n,
                            "is required with type Localhost: the path of an OCI/Docker JSON profile")
                        ok = false
                    }
                case "Unconfined":
                    if profile != nil {
                        d.report(DocumentReader.join(f, "localhostProfile"), s["localhostProfile"], "is only used with type Localhost")
                        ok = false
                    }
                    context.seccompProfile = .unconfined
                case nil:
                    if s["type"] == nil { d.report(DocumentReader.join(f, "type"), n, "is required: Localhost or Unconfined") }
                    ok = false
                case let other?:
                    let hint = other == "RuntimeDefault" ? " (there is no runtime default here; give the profile as Localhost)" : ""
                    d.report(DocumentReader.join(f, "type"), s["type"], "unknown type \"\(other)\": use Localhost or Unconfined\(hint)")
                    ok = false
                }
            } else {
                ok = false
            }
        }
        return ok ? context : nil
    }

    private static func readVolumes(_ d: inout DocumentReader, _ node: YAMLNode, _ path: String) -> [PayloadSpec.VolumeMount]? {
        guard let items = d.sequence(node, path) else { return nil }
        var volumes: [PayloadSpec.VolumeMount] = []
        var ok = true
        for (i, item) in items.enumerated() {
            let field = DocumentReader.index(path, i)
            guard let e = d.mapping(item, field, keys: ["name", "hostPath", "mountPath", "readOnly"]) else {
                ok = false
                continue
            }
            var values: [String: String] = [:]
            for key in ["name", "hostPath", "mountPath"] {
                guard let n = e[key] else {
                    d.report(DocumentReader.join(field, key), item, "is required")
                    ok = false
                    continue
                }
                if let value = d.string(n, DocumentReader.join(field, key)) { values[key] = value } else { ok = false }
            }
            let readOnly = e["readOnly"].map { d.bool($0, DocumentReader.join(field, "readOnly")) } ?? false
            guard let name = values["name"], let host = values["hostPath"], let mount = values["mountPath"], let readOnly else {
                ok = false
                continue
            }
            volumes.append(.init(name: name, hostPath: host, mountPath: mount, readOnly: readOnly))
        }
        return ok ? volumes : nil
    }

    private static func readSandbox(_ d: inout DocumentReader, _ node: YAMLNode, _ path: String) -> PayloadSpec.Sandbox? {
        guard let e = d.mapping(node, path, keys: ["mountPoint", "mode", "readOnly"]) else { return nil }
        var sandbox = PayloadSpec.Sandbox()
        var ok = true
        if let n = e["mountPoint"] {
            sandbox.mountPoint = d.string(n, DocumentReader.join(path, "mountPoint"))
            ok = ok && sandbox.mountPoint != nil
        }
        if let n = e["mode"], let text = d.string(n, DocumentReader.join(path, "mode")) {
            if let mode = PayloadSpec.StorageMode(rawValue: text) {
                sandbox.mode = mode
            } else {
                d.report(
                    DocumentReader.join(path, "mode"), n,
                    "unknown mode \"\(text)\": use private (a mount namespace of the job's own) or host (mounts under /run/jobobjects/NAME)"
                )
                ok = false
            }
        } else if e["mode"] != nil {
            ok = false
        }
        if let n = e["readOnly"] {
            if let value = d.bool(n, DocumentReader.join(path, "readOnly")) { sandbox.readOnly = value } else { ok = false }
        }
        return ok ? sandbox : nil
    }

    /// 1000 or "1000" is a number; anything else a name.
    private static func readNameOrID(_ d: inout DocumentReader, _ node: YAMLNode, _ path: String) -> PayloadSpec.NameOrID? {
        guard let text = d.string(node, path) else { return nil }
        if !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber) {
            guard let id = UInt32(text), id != UInt32.max else {
                d.report(path, node, "\(text) is not a valid id (0…4294967294)")
                return nil
            }
            return .id(id)
        }
        if text.isEmpty {
            d.report(path, node, "is empty; give a name or a number")
            return nil
        }
        return .name(text)
    }

    /// "70000-79999".
    private static func readRange(_ d: inout DocumentReader, _ node: YAMLNode, _ path: String) -> ClosedRange<UInt32>? {
        guard let text = d.string(node, path) else { return nil }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { $0.trimmingWhitespace }
        guard parts.count == 2, let low = UInt32(parts[0]), let high = UInt32(parts[1]), low <= high, low > 0, high < UInt32.max else {
            d.report(
                path, node, "expected a range of uids \"FIRST-LAST\" with 0 < FIRST ≤ LAST < 4294967295, e.g. \"1879048192-1879113727\"")
            return nil
        }
        return low...high
    }
}

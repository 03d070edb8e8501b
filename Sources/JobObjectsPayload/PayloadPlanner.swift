import JobObjects
import Glibc
import SystemPackage

/// Resolves a spec against the system into a `PayloadPlan`, collecting
/// every problem (with its field) rather than stopping at the first.
/// Reads only: users and groups, paths, the seccomp profile, the process's
/// capabilities.
struct PayloadPlanner {
    let spec: PayloadSpec
    private(set) var problems: [PayloadProblem] = []

    init(spec: PayloadSpec) { self.spec = spec }

    private mutating func add(_ field: String, _ message: String) {
        problems.append(spec.problem(field, message))
    }

    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    mutating func plan() -> PayloadPlan? {
        problems = spec.staticProblems()
        guard problems.isEmpty else { return nil }
        let sandbox = spec.resolvedSandboxMountPoint
        let root = spec.storageRoot
        let payloadDirectory = PayloadPaths.resolve(spec.payload, against: spec.baseDirectory)
        switch Self.kind(of: payloadDirectory) {
        case .directory?: break
        case nil: add("payload", "the payload directory \(payloadDirectory) does not exist")
        default: add("payload", "\(payloadDirectory) is not a directory")
        }

        let (identity, user) = resolveIdentity()
        let targetUID: uid_t =
            switch identity {
            case .inherit: geteuid()
            case .fixed(let credentials): credentials.uid
            case .ephemeral: UInt32.max - 1  // never root
            }
        let permitted = Capability.permitted()
        let capabilities = resolveCapabilities(root: targetUID == 0, permitted: permitted)
        let effectiveCaps = capabilities ?? (targetUID == 0 ? permitted : [])
        var filter: SeccompFilter?
        if case .localhost(let given) = spec.securityContext.seccompProfile {
            filter = compileProfile(PayloadPaths.resolve(given, against: spec.baseDirectory), capabilities: effectiveCaps)
        }
        // Without CAP_SYS_ADMIN the kernel loads a filter only under no_new_privs.
        let noNewPrivileges = spec.securityContext.noNewPrivileges || (filter != nil && !effectiveCaps.contains(.sysAdmin))

        let (mounts, created) = planMounts(sandbox: sandbox, root: root, payloadDirectory: payloadDirectory)

        let executable = PayloadPaths.expand(spec.command[0], sandbox: sandbox)
        let arguments = (spec.command.dropFirst() + spec.args).map { PayloadPaths.expand($0, sandbox: sandbox) }
        let workingDirectory = spec.workingDir.map { PayloadPaths.normalize(PayloadPaths.expand($0, sandbox: sandbox)) } ?? sandbox
        var environment = ["PATH": Self.defaultPath, "HOME": user?.home ?? "/", PayloadSpec.sandboxVariable: sandbox]
        if let user {
            environment["USER"] = user.name
            environment["LOGNAME"] = user.name
        }
        for entry in spec.env { environment[entry.name] = PayloadPaths.expand(entry.value, sandbox: sandbox) }

        let limits: JobLimits
        do { limits = try spec.limits() } catch {
            add(error.field, error.message)
            return nil
        }
        guard problems.isEmpty else { return nil }
        return PayloadPlan(
            name: spec.name, mode: spec.sandbox.mode, storageRoot: root, sandboxMountPoint: sandbox,
            payloadDirectory: payloadDirectory, mounts: mounts, createdPaths: created,
            executable: executable, arguments: arguments, workingDirectory: workingDirectory,
            environment: environment, identity: identity, capabilities: capabilities,
            noNewPrivileges: noNewPrivileges, seccompFilter: filter, limits: limits,
            grace: .seconds(spec.terminationGracePeriodSeconds))
    }

    // MARK: Identity

    private mutating func resolveGroup(_ reference: PayloadSpec.NameOrID, _ field: String) -> gid_t? {
        switch reference {
        case .id(let id): return id
        case .name(let name):
            guard let gid = UserDatabase.group(named: name) else {
                add(field, "no group named \"\(name)\" (give a group that exists, or its number)")
                return nil
            }
            return gid
        }
    }

    private mutating func resolveIdentity() -> (PayloadPlan.Identity, UserDatabase.User?) {
        let context = spec.securityContext
        let field = "securityContext"
        var groups: [gid_t]?
        if let list = context.supplementalGroups {
            groups = list.enumerated().compactMap { resolveGroup($1, "\(field).supplementalGroups[\($0)]") }
        }
        if let ephemeral = context.ephemeralUser {
            guard let gid = resolveGroup(ephemeral.group, "\(field).ephemeralUser.group") else { return (.inherit, nil) }
            return (.ephemeral(range: ephemeral.uidRange, gid: gid, groups: groups ?? [gid]), nil)
        }
        let group = context.runAsGroup.flatMap { resolveGroup($0, "\(field).runAsGroup") }
        if context.runAsGroup != nil && group == nil { return (.inherit, nil) }
        guard let userReference = context.runAsUser else {
            guard let group else {
                return (groups.map { .fixed(.init(uid: geteuid(), gid: getegid(), supplementaryGroups: $0)) } ?? .inherit, nil)
            }
            return (.fixed(.init(uid: geteuid(), gid: group, supplementaryGroups: groups ?? [])), nil)
        }
        let user: UserDatabase.User?
        switch userReference {
        case .name(let name):
            user = UserDatabase.user(named: name)
            if user == nil {
                add("\(field).runAsUser", "no user named \"\(name)\" (give a user that exists, or a number with runAsGroup)")
                return (.inherit, nil)
            }
        case .id(let id):
            user = UserDatabase.user(id: id)
            if user == nil && group == nil {
                add("\(field).runAsGroup", "uid \(id) has no passwd entry, so its group must be given")
                return (.inherit, nil)
            }
        }
        let uid = user?.uid ?? { if case .id(let id) = userReference { return id } else { return 0 } }()
        let gid = group ?? user!.gid
        let supplementary = groups ?? user.map { UserDatabase.groups(of: $0.name, primary: gid) } ?? []
        return (.fixed(.init(uid: uid, gid: gid, supplementaryGroups: supplementary)), user)
    }

    // MARK: Capabilities

    private mutating func resolveCapabilities(root: Bool, permitted: Set<Capability>) -> Set<Capability>? {
        guard let caps = spec.securityContext.capabilities else { return nil }
        let field = "securityContext.capabilities"
        func parse(_ names: [String], _ list: String) -> (Set<Capability>, Bool) {
            var set = Set<Capability>()
            var all = false
            for name in names {
                if name.uppercased() == "ALL" { all = true } else if let cap = try? Capability(name: name) { set.insert(cap) }
            }
            return (set, all)
        }
        let (added, addAll) = parse(caps.add, "add")
        let (dropped, dropAll) = parse(caps.drop, "drop")
        var keep: Set<Capability> = dropAll ? [] : (root ? permitted : [])
        keep.subtract(dropped)
        keep.formUnion(addAll ? permitted : added)
        for (i, name) in caps.add.enumerated() where name.uppercased() != "ALL" {
            if let cap = try? Capability(name: name), !permitted.contains(cap) {
                add("\(field).add[\(i)]", "this process does not hold \(cap.name) (it is not in its permitted set), so it cannot give it")
            }
        }
        return keep
    }

    // MARK: Seccomp

    private mutating func compileProfile(_ path: String, capabilities: Set<Capability>) -> SeccompFilter? {
        let field = "securityContext.seccompProfile.localhostProfile"
        let (profile, found) = SeccompProfile.read(path: path)
        if !found.isEmpty {
            if found.count == 1, found[0].field.isEmpty, found[0].line == nil {
                add(field, "\(path): \(found[0].message)")
            } else {
                add(field, "the profile \(path) has \(found.count == 1 ? "a problem" : "\(found.count) problems") (listed below)")
                problems += found
            }
            return nil
        }
        do {
            return try profile?.compile(capabilities: capabilities)
        } catch {
            add(field, "\(path): \(error.message)")
            return nil
        }
    }

    // MARK: Storage

    private mutating func planMounts(
        sandbox: String, root: String, payloadDirectory: String
    )
        -> ([SpawnOptions.BindMount], [PayloadPlan.CreatedPath])
    {
        // Planned as text (FilePath has no prefix arithmetic); BindMounts at the end.
        var wanted: [(mount: (source: String, target: String, readOnly: Bool), field: String)] = [
            ((payloadDirectory, sandbox, spec.sandbox.readOnly), "sandbox.mountPoint")
        ]
        for (i, volume) in spec.volumeMounts.enumerated() {
            let field = "volumeMounts[\(i)]"
            let source = PayloadPaths.normalize(volume.hostPath)
            if Self.kind(of: source) == nil {
                add(field + ".hostPath", "\(source) does not exist on the host")
                continue
            }
            let target = PayloadPaths.normalize(PayloadPaths.expand(volume.mountPath, sandbox: sandbox))
            wanted.append(((source, target, volume.readOnly), field + ".mountPath"))
        }
        // Outer mount points first, so that a mount inside another sees it.
        let ordered = wanted.enumerated().sorted { a, b in
            let (da, db) = (a.element.mount.target.split(separator: "/").count, b.element.mount.target.split(separator: "/").count)
            return (da, a.offset) < (db, b.offset)
        }.map(\.element)

        var created = [PayloadPlan.CreatedPath(path: root, isDirectory: true)]
        var createdSet: Set<String> = [root]
        for (i, entry) in ordered.enumerated() {
            let target = entry.mount.target
            let sourceKind = Self.kind(of: entry.mount.source)
            let isDirectory = sourceKind == .directory
            let kindName = isDirectory ? "a directory" : "a file"
            if let holder = ordered[..<i].last(where: { PayloadPaths.isWithin(target, $0.mount.target) && target != $0.mount.target }) {
                let rest = target.dropFirst(holder.mount.target.count)
                let inside = holder.mount.source + rest
                if Self.kind(of: inside).map({ ($0 == .directory) == isDirectory }) != true {
                    add(
                        entry.field,
                        "\(target) lies inside the mount at \(holder.mount.target), so it must exist there as \(kindName): \(inside) \(Self.kind(of: inside) == nil ? "does not exist" : "is not " + kindName)"
                    )
                }
            } else if PayloadPaths.isWithin(target, root) {
                var path = root
                let components = target.dropFirst(root.count).split(separator: "/")
                for (j, component) in components.enumerated() {
                    path += "/" + component
                    guard createdSet.insert(path).inserted else { continue }
                    created.append(.init(path: path, isDirectory: j < components.count - 1 || isDirectory))
                }
            } else if Self.kind(of: target).map({ ($0 == .directory) == isDirectory }) != true {
                add(
                    entry.field, "the mount point \(target) must exist as \(kindName) (the runner creates mount points only under \(root)/)"
                )
            }
        }
        let mounts = ordered.map { entry in
            SpawnOptions.BindMount(
                source: FilePath(entry.mount.source), target: FilePath(entry.mount.target), readOnly: entry.mount.readOnly)
        }
        return (mounts, created)
    }

    enum Kind { case directory, file, other }

    /// What is at `path`, following symlinks; nil when nothing is.
    static func kind(of path: String) -> Kind? {
        guard case .success(let info) = Syscall.fileStatus(path) else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file
        default: return .other
        }
    }
}

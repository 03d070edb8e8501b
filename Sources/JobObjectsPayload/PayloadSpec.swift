import JobObjects
import SystemPackage
import Glibc

/// What to run as a HostProcess-style payload: a directory of files (the
/// "image") run as ordinary processes on the host, in one job, under a
/// chosen identity, with its files mounted at a sandbox mount point.
///
/// Shaped after a Kubernetes container so that it reads familiar, and read
/// from YAML or JSON (`load(path:)`, `decode(yaml:file:)`); every key is
/// described in docs/hostprocess.md. Decoding rejects unknown keys with
/// their line and checks everything that needs no system state; `validate()`
/// (which `Payload.start` runs) adds what does — users, groups, paths, the
/// seccomp profile, capabilities held — and reports every problem at once,
/// each with its field path.
///
/// ```yaml
/// name: node-admin
/// payload: ./node-admin
/// command: ["$(CONTAINER_SANDBOX_MOUNT_POINT)/bin/setup"]
/// securityContext:
///   ephemeralUser: {group: adm}
///   capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
/// volumeMounts:
///   - {name: logs, hostPath: /var/log/node-admin, mountPath: /var/log/node-admin}
/// ```
public struct PayloadSpec: Sendable, Equatable {
    /// The job's name (a cgroup directory name; not starting with ".").
    public var name: String
    /// The payload directory. Relative paths are resolved against
    /// `baseDirectory` (the spec file's directory).
    public var payload: String
    /// The executable and its first arguments (Kubernetes `command`).
    public var command: [String]
    /// Further arguments (Kubernetes `args`).
    public var args: [String]
    /// Environment variables, in order; the payload gets only these and
    /// the defaults listed in docs/hostprocess.md.
    public var env: [EnvVar]
    /// The working directory; nil: the sandbox mount point.
    public var workingDir: String?
    /// Limits and requests, as a Kubernetes container's.
    public var resources: Resources
    /// User, group, capabilities and seccomp.
    public var securityContext: SecurityContext
    /// Host directories bound in.
    public var volumeMounts: [VolumeMount]
    /// Where and how the payload directory is mounted.
    public var sandbox: Sandbox
    /// Seconds between SIGTERM and SIGKILL for what init leaves behind.
    public var terminationGracePeriodSeconds: Int
    /// Where relative paths (`payload`, a seccomp profile) are resolved;
    /// nil: the current directory.
    public var baseDirectory: String?
    /// Where each field was read from, for messages. Not part of equality.
    var locations = SpecLocations()

    /// A spec as values (`load` and `decode` read one from a file).
    public init(
        name: String, payload: String, command: [String], args: [String] = [], env: [EnvVar] = [],
        workingDir: String? = nil, resources: Resources = Resources(),
        securityContext: SecurityContext = SecurityContext(), volumeMounts: [VolumeMount] = [],
        sandbox: Sandbox = Sandbox(), terminationGracePeriodSeconds: Int = 5, baseDirectory: String? = nil
    ) {
        self.name = name
        self.payload = payload
        self.command = command
        self.args = args
        self.env = env
        self.workingDir = workingDir
        self.resources = resources
        self.securityContext = securityContext
        self.volumeMounts = volumeMounts
        self.sandbox = sandbox
        self.terminationGracePeriodSeconds = terminationGracePeriodSeconds
        self.baseDirectory = baseDirectory
    }

    /// One environment variable for init.
    public struct EnvVar: Sendable, Hashable {
        /// The variable's name.
        public var name: String
        /// Its value; `$CONTAINER_SANDBOX_MOUNT_POINT` is expanded.
        public var value: String
        /// `name=value`.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Kubernetes-style resources, mapped to `JobLimits`.
    public struct Resources: Sendable, Hashable {
        /// Hard limits.
        public var limits: ResourceList
        /// Guarantees (memory.min, cpu.weight).
        public var requests: ResourceList
        /// Limits and requests as values.
        public init(limits: ResourceList = ResourceList(), requests: ResourceList = ResourceList()) {
            self.limits = limits
            self.requests = requests
        }
    }

    /// Quantities as Kubernetes writes them.
    public struct ResourceList: Sendable, Hashable {
        /// Bytes: "512Mi", "1G", "4096" (limits → memory.max, requests → memory.min).
        public var memory: String?
        /// CPUs: "1.5", "500m" (limits → cpu.max, requests → cpu.weight).
        public var cpu: String?
        /// Processes and threads (limits → pids.max; not a request).
        public var pids: Int?
        /// Quantities in Kubernetes' notation (`512Mi`, `500m`).
        public init(memory: String? = nil, cpu: String? = nil, pids: Int? = nil) {
            self.memory = memory
            self.cpu = cpu
            self.pids = pids
        }
    }

    /// A user or group by number or by name.
    public enum NameOrID: Sendable, Hashable, CustomStringConvertible {
        case id(UInt32)
        case name(String)
        public var description: String {
            switch self {
            case .id(let id): String(id)
            case .name(let name): name
            }
        }
    }

    /// Who init runs as and what it may do.
    public struct SecurityContext: Sendable, Hashable {
        /// The user; nil: the owner's (or the ephemeral user).
        public var runAsUser: NameOrID?
        /// The primary group; nil: the user's primary group (from passwd)
        /// for a named user, else the user id's number.
        public var runAsGroup: NameOrID?
        /// Supplementary groups; nil: the named user's groups (initgroups),
        /// else none.
        public var supplementalGroups: [NameOrID]?
        /// A uid allocated for the job alone (HostProcess "run as a local
        /// group"); excludes `runAsUser`.
        public var ephemeralUser: EphemeralUser?
        /// Capabilities added to and dropped from the default set.
        public var capabilities: Capabilities?
        /// Set `no_new_privs` (Kubernetes `allowPrivilegeEscalation: false`).
        public var noNewPrivileges: Bool
        /// The seccomp profile, if any.
        public var seccompProfile: SeccompProfileSource?

        /// A security context; every field left out keeps the owner's setting.
        public init(
            runAsUser: NameOrID? = nil, runAsGroup: NameOrID? = nil, supplementalGroups: [NameOrID]? = nil,
            ephemeralUser: EphemeralUser? = nil, capabilities: Capabilities? = nil,
            noNewPrivileges: Bool = false, seccompProfile: SeccompProfileSource? = nil
        ) {
            self.runAsUser = runAsUser
            self.runAsGroup = runAsGroup
            self.supplementalGroups = supplementalGroups
            self.ephemeralUser = ephemeralUser
            self.capabilities = capabilities
            self.noNewPrivileges = noNewPrivileges
            self.seccompProfile = seccompProfile
        }
    }

    /// A uid allocated for the job from a range and released after it.
    public struct EphemeralUser: Sendable, Hashable {
        /// The group the allocated user runs in (its primary group).
        public var group: NameOrID
        /// The uids to allocate from.
        public var uidRange: ClosedRange<UInt32>
        /// A range systemd's UIDS-GIDS.md leaves unused (above the container
        /// range 524288…1879048191), so it collides with no allocator.
        public static let defaultRange: ClosedRange<UInt32> = 1_879_048_192...1_879_113_727

        /// A uid from `uidRange`, with `group` as its group.
        public init(group: NameOrID, uidRange: ClosedRange<UInt32> = defaultRange) {
            self.group = group
            self.uidRange = uidRange
        }
    }

    /// Kubernetes-style capability changes: the kept set is (base − drop) ∪
    /// add, where base is every capability the owner holds for a root
    /// payload and none for another user; `ALL` names every capability.
    public struct Capabilities: Sendable, Hashable {
        /// Capability names to add.
        public var add: [String]
        /// Capability names to drop (`ALL` for every one).
        public var drop: [String]
        /// Capabilities as values.
        public init(add: [String] = [], drop: [String] = []) {
            self.add = add
            self.drop = drop
        }
    }

    /// Where the seccomp profile comes from.
    public enum SeccompProfileSource: Sendable, Hashable {
        /// No filter (Kubernetes `type: Unconfined`).
        case unconfined
        /// An OCI/Docker JSON profile file (Kubernetes `type: Localhost`);
        /// relative to `baseDirectory`.
        case localhost(String)
    }

    /// A host directory bound in.
    public struct VolumeMount: Sendable, Hashable {
        /// The volume's name (unique in the spec; used in messages).
        public var name: String
        /// An absolute directory or file on the host.
        public var hostPath: String
        /// Where the payload sees it (absolute; `$(CONTAINER_SANDBOX_MOUNT_POINT)`
        /// is expanded). In `.hostVisible` mode it must lie under the job's
        /// directory /run/jobobjects/NAME.
        public var mountPath: String
        /// Whether it is bound read-only.
        public var readOnly: Bool
        /// `hostPath` bound at `mountPath`.
        public init(name: String, hostPath: String, mountPath: String, readOnly: Bool = false) {
            self.name = name
            self.hostPath = hostPath
            self.mountPath = mountPath
            self.readOnly = readOnly
        }
    }

    /// Where and how the payload directory is mounted.
    public struct Sandbox: Sendable, Hashable {
        /// Where the payload directory is mounted; nil: /run/jobobjects/NAME/sandbox.
        public var mountPoint: String?
        /// A private mount namespace, or mounts the host sees.
        public var mode: StorageMode
        /// Mount the payload directory read-only (the default).
        public var readOnly: Bool
        /// The default: a private namespace, read-only, at the default mount point.
        public init(mountPoint: String? = nil, mode: StorageMode = .privateNamespace, readOnly: Bool = true) {
            self.mountPoint = mountPoint
            self.mode = mode
            self.readOnly = readOnly
        }
    }

    /// Where the payload's mounts live.
    public enum StorageMode: String, Sendable, Hashable {
        /// The job gets its own mount namespace: its mounts are visible only
        /// to its processes and the kernel removes them with its last
        /// process, whatever happens to the owner. YAML: `private`.
        case privateNamespace = "private"
        /// The mounts are made in the owner's namespace under
        /// /run/jobobjects/NAME, for tools on the host. YAML: `host`.
        case hostVisible = "host"
    }

    /// The name of the variable that holds the sandbox mount point.
    public static let sandboxVariable = "CONTAINER_SANDBOX_MOUNT_POINT"

    public static func == (lhs: PayloadSpec, rhs: PayloadSpec) -> Bool {
        lhs.name == rhs.name && lhs.payload == rhs.payload && lhs.command == rhs.command && lhs.args == rhs.args
            && lhs.env == rhs.env && lhs.workingDir == rhs.workingDir && lhs.resources == rhs.resources
            && lhs.securityContext == rhs.securityContext && lhs.volumeMounts == rhs.volumeMounts
            && lhs.sandbox == rhs.sandbox && lhs.terminationGracePeriodSeconds == rhs.terminationGracePeriodSeconds
            && lhs.baseDirectory == rhs.baseDirectory
    }
}

// MARK: - Loading

extension PayloadSpec {
    /// The largest spec file read: a spec is a page or two; this leaves
    /// room for long command lines and environments.
    public static let maximumFileSize = 1 << 20

    /// Reads and decodes a spec file (YAML or JSON): a regular file of UTF-8
    /// text of at most `maximumFileSize` bytes. Relative paths in it are
    /// resolved against the file's directory.
    public static func load(path filePath: FilePath) throws(JobObjectError) -> PayloadSpec {
        let path = filePath.string
        let text: String
        switch UserFile.read(path, what: "payload spec", limit: maximumFileSize) {
        case .success(let contents): text = contents
        case .failure(let error): throw JobObjectError(.invalidArgument, error.message, operation: "load payload spec", path: path)
        }
        let absolute = path.hasPrefix("/") ? path : PayloadPaths.currentDirectory() + "/" + path
        return try decode(yaml: text, file: path, baseDirectory: PayloadPaths.parent(of: PayloadPaths.normalize(absolute)))
    }

    /// Decodes a spec from YAML or JSON text. `file` names it in messages.
    /// Throws one `.invalidArgument` error listing every problem found that
    /// needs no system state: unknown keys (with their line), wrong types,
    /// missing fields, malformed values.
    public static func decode(yaml: String, file: String = "spec", baseDirectory: String? = nil) throws(JobObjectError) -> PayloadSpec {
        var reader = SpecReader(file: file)
        let spec = reader.readSpec(yaml, baseDirectory: baseDirectory)
        var problems = reader.problems
        if let spec, problems.isEmpty { problems = spec.staticProblems() }
        if let spec, problems.isEmpty { return spec }
        throw problems.error(operation: "load payload spec", subject: file, path: file)
    }

    /// Every problem with this spec, including those that need the system:
    /// users and groups that do not resolve, missing paths, a seccomp
    /// profile that does not parse or compile, capabilities not held.
    public func problems() -> [PayloadProblem] {
        let staticOnes = staticProblems()
        if !staticOnes.isEmpty { return staticOnes }
        var plan = PayloadPlanner(spec: self)
        _ = plan.plan()
        return plan.problems
    }

    /// Throws one error listing every problem (see `problems()`).
    public func validate() throws(JobObjectError) {
        let found = problems()
        if !found.isEmpty {
            throw found.error(operation: "validate payload spec", subject: locations.file ?? "payload spec \(name)", path: locations.file)
        }
    }

    /// The line a field was read from, when it was read from a file.
    func line(of field: String) -> Int? { locations.line(of: field) }

    func problem(_ field: String, _ message: String) -> PayloadProblem {
        PayloadProblem(field: field, file: locations.file, line: line(of: field), message: message)
    }
}

/// Field path → line, for messages; equal whatever it holds.
struct SpecLocations: Sendable, Equatable {
    var file: String?
    var lines: [String: Int] = [:]

    /// The line of `field`, else of its nearest enclosing field.
    func line(of field: String) -> Int? {
        var path = Substring(field)
        while true {
            if let line = lines[String(path)] { return line }
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            path = path[..<cut]
        }
    }

    static func == (lhs: SpecLocations, rhs: SpecLocations) -> Bool { true }
}

import Glibc
import JobObjects
import SystemPackage

/// The part of an OCI runtime-spec `config.json` that a HostProcess-style
/// payload uses, read and checked by `OCIConfig.load(bundle:)`.
///
/// What a host process cannot honour is refused when the config is read
/// (runtime-spec: what cannot be applied must fail): a new pid, network,
/// ipc, uts or user namespace, hooks. What is the host's anyway (proc,
/// sysfs, tmpfs, devpts, mqueue and cgroup mounts, `hostname`, devices) is
/// ignored. Unknown properties are ignored, as the spec requires.
public struct OCIConfig: Sendable {
    /// `process.user`.
    public struct User: Sendable, Equatable {
        public var uid: uid_t
        public var gid: gid_t
        public var additionalGids: [gid_t]
    }

    /// `process`.
    public struct Process: Sendable {
        public var terminal = false
        /// `consoleSize`: the terminal's rows and columns, when a terminal
        /// is asked for and the size given.
        public var consoleSize: (rows: UInt16, columns: UInt16)?
        public var args: [String] = []
        public var env: [String] = []
        public var cwd = "/"
        public var user = User(uid: 0, gid: 0, additionalGids: [])
        /// The permitted set (nil: no `capabilities` object, so none).
        public var capabilities: Set<Capability> = []
        public var noNewPrivileges = false
        public var rlimits: [ResourceLimit] = []
        public var oomScoreAdj: Int?
    }

    /// A bind mount from `mounts[]` (other types are the host's and dropped).
    public struct BindMount: Sendable, Equatable {
        public var destination: String
        public var source: String
        public var readOnly: Bool
    }

    /// The namespace types a payload may name, and whether it gets a new one.
    public struct Namespaces: Sendable, Equatable {
        /// A new mount namespace: the payload's mounts are private to it.
        public var mount = false
        /// A new cgroup namespace, rooted at the job.
        public var cgroup = false
    }

    public var ociVersion: String
    public var process: Process
    /// `root.path`, absolute (a relative one is taken from the bundle).
    public var rootPath: String
    public var rootReadOnly: Bool
    public var mounts: [BindMount]
    public var namespaces: Namespaces
    /// `linux.cgroupsPath` as written (nil: absent).
    public var cgroupsPath: String?
    /// `linux.resources` as job limits.
    public var limits: JobLimits
    /// `linux.seccomp`.
    public var seccomp: SeccompProfile?
    /// `annotations`, in file order.
    public var annotations: [(key: String, value: String)]

    /// The largest config.json read: engines write a few KB; a seccomp
    /// profile inside it can take a few hundred.
    public static let maximumFileSize = 4 << 20

    /// Reads `bundle/config.json`; every problem is reported at once, each
    /// naming its field and line.
    public static func load(bundle: FilePath) throws(JobObjectError) -> OCIConfig {
        let path = bundle.appending("config.json").string
        let text: String
        switch UserFile.read(path, what: "OCI config", limit: maximumFileSize) {
        case .success(let read): text = read
        case .failure(let error): throw JobObjectError(.invalidArgument, error.message, operation: "read OCI config", path: path)
        }
        var reader = OCIConfigReader(file: path, bundle: bundle.string)
        guard let config = reader.read(text) else {
            throw reader.problems.error(operation: "read OCI config", subject: path, path: path)
        }
        return config
    }

    /// Reads a `process` object from its own file (runc's `exec --process
    /// FILE`); problems are named as in a config (`process.args`, …).
    public static func loadProcess(file: FilePath) throws(JobObjectError) -> Process {
        let path = file.string
        let text: String
        switch UserFile.read(path, what: "OCI process", limit: maximumFileSize) {
        case .success(let read): text = read
        case .failure(let error): throw JobObjectError(.invalidArgument, error.message, operation: "read OCI process", path: path)
        }
        var reader = OCIConfigReader(file: path, bundle: "/")
        guard let process = reader.readProcessDocument(text) else {
            throw reader.problems.error(operation: "read OCI process", subject: path, path: path)
        }
        return process
    }

    /// Reads a `LinuxResources` object (runc's `update --resources FILE`)
    /// as the job limits to set; `source` names it in problems. Values that
    /// mean "no limit" (0, -1) leave a limit as it is.
    public static func readResources(_ text: String, source: String) throws(JobObjectError) -> JobLimits {
        var d = DocumentReader(file: source)
        guard let node = d.parse(text) else { throw d.problems.error(operation: "read OCI resources", subject: source, path: source) }
        let limits = OCIResourcesReader.read(node, &d, "resources")
        guard d.problems.isEmpty else { throw d.problems.error(operation: "read OCI resources", subject: source, path: source) }
        return limits
    }

    /// `readResources` from a file, or from standard input for `-` (as
    /// runc's `update --resources -`).
    public static func loadResources(file: FilePath) throws(JobObjectError) -> JobLimits {
        let standardInput = file.string == "-"
        let read =
            standardInput
            ? UserFile.readStandardInput(what: "OCI resources", limit: maximumFileSize)
            : UserFile.read(file.string, what: "OCI resources file", limit: maximumFileSize)
        switch read {
        case .success(let text): return try readResources(text, source: standardInput ? "standard input" : file.string)
        case .failure(let error):
            throw JobObjectError(.invalidArgument, error.message, operation: "read OCI resources", path: file.string)
        }
    }

    /// The value of annotation `key`, if given.
    public func annotation(_ key: String) -> String? {
        annotations.last { $0.key == key }?.value
    }
}

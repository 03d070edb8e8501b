import Glibc
import JobObjects
import JobObjectsPayload
import SystemPackage

/// An OCI `process` as a HostProcess-style spawn: a host program with the
/// config's user, capabilities, rlimits, no_new_privs and seccomp, in a
/// private mount namespace where the payload directory (`root.path`) is at
/// the sandbox mount point and each bind mount is a volume under it.
/// `$CONTAINER_SANDBOX_MOUNT_POINT` in args, env and cwd is expanded, and
/// exported.
enum OCIProcessOptions {
    static let sandboxVariable = "CONTAINER_SANDBOX_MOUNT_POINT"

    static func spawnOptions(_ config: OCIConfig, sandbox: String) throws(OCIRuntimeError) -> SpawnOptions {
        func expand(_ text: String) -> String {
            text.replacing("$" + sandboxVariable, with: sandbox).replacing("${" + sandboxVariable + "}", with: sandbox)
        }
        let process = config.process
        var environment: [String: String] = [:]
        for entry in process.env {
            let equals = entry.firstIndex(of: "=")!
            environment[String(entry[..<equals])] = expand(String(entry[entry.index(after: equals)...]))
        }
        environment[sandboxVariable] = sandbox
        let args = process.args.map(expand)
        var options = SpawnOptions(args[0], arguments: Array(args.dropFirst()))
        options.argument0 = args[0]
        options.environment = .custom(environment)
        options.workingDirectory = FilePath(expand(process.cwd))
        options.processGroup = .newSession
        options.credentials = SpawnOptions.Credentials(
            uid: process.user.uid, gid: process.user.gid, supplementaryGroups: process.user.additionalGids)
        options.capabilities = process.capabilities
        options.resourceLimits = process.rlimits
        options.noNewPrivileges = process.noNewPrivileges
        options.cgroupNamespace = config.namespaces.cgroup
        if let profile = config.seccomp {
            do {
                options.seccompFilter = try profile.compile(capabilities: process.capabilities)
            } catch {
                throw OCIRuntimeError("linux.seccomp: \(error.message)")
            }
            // Without CAP_SYS_ADMIN the kernel loads a filter only under
            // no_new_privs, as runc sets it.
            if !process.capabilities.contains(Capability.sysAdmin) { options.noNewPrivileges = true }
        }
        var mounts = [SpawnOptions.BindMount(source: FilePath(config.rootPath), target: FilePath(sandbox), readOnly: config.rootReadOnly)]
        for volume in config.mounts {
            let target = sandbox + volume.destination
            try makeMountTarget(config.rootPath + volume.destination, like: volume.source)
            mounts.append(SpawnOptions.BindMount(source: FilePath(volume.source), target: FilePath(target), readOnly: volume.readOnly))
        }
        options.mountNamespace = SpawnOptions.MountNamespace(propagation: .slave, mounts: mounts)
        return options
    }

    /// A volume's mount point inside the payload directory: a directory for
    /// a directory, an empty file for anything else, as runc makes them in
    /// a rootfs.
    private static func makeMountTarget(_ path: String, like source: String) throws(OCIRuntimeError) {
        var info = stat()
        guard stat(path, &info) != 0 else { return }
        var sourceInfo = stat()
        guard stat(source, &sourceInfo) == 0 else {
            throw OCIRuntimeError("mount source \(source) does not exist")
        }
        let isDirectory = (sourceInfo.st_mode & S_IFMT) == S_IFDIR
        var built = ""
        let parts = path.split(separator: "/")
        for (i, part) in parts.enumerated() {
            built += "/" + part
            let last = i == parts.count - 1
            if last && !isDirectory {
                let fd = open(built, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw OCIRuntimeError("cannot make the mount point \(built): \(String(cString: strerror(errno)))") }
                close(fd)
            } else if mkdir(built, 0o755) != 0 && errno != EEXIST {
                throw OCIRuntimeError("cannot make the mount point \(built): \(String(cString: strerror(errno)))")
            }
        }
    }
}

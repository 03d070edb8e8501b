import Glibc
import Synchronization
import SystemPackage

/// Where the cgroup2 hierarchy is mounted and where the caller sits in it.
///
/// Read from `/proc/self/mountinfo` (the first `cgroup2` mount, preferring
/// `/sys/fs/cgroup` and `/sys/fs/cgroup/unified`) and from the `0::` line of
/// `/proc/self/cgroup`. Pure v2 hosts mount it at `/sys/fs/cgroup`, hybrid
/// ones at `/sys/fs/cgroup/unified`; no path is assumed.
public struct CgroupHierarchy: Sendable, Equatable {
    /// The cgroup2 mount point, e.g. `/sys/fs/cgroup`.
    public var mountPoint: FilePath { FilePath(mountDirectory) }
    /// The caller's cgroup as an absolute directory path.
    public var ownCgroup: FilePath { FilePath(ownCgroupDirectory) }
    /// Whether the mount is read-only.
    public let isReadOnly: Bool
    /// `mountPoint` and `ownCgroup` as the text the system calls take.
    let mountDirectory: String
    let ownCgroupDirectory: String
    /// How the caller's cgroup namespace names cgroups (in /proc/PID/cgroup):
    /// a directory below `directory` is shown as `shownAs` followed by the
    /// rest of its path. The mount point and the mount's root for a mount
    /// made in the caller's namespace; the namespace's root and `/` inside
    /// a namespace rooted below the mount's root.
    let namespaceView: (directory: String, shownAs: String)

    /// A hierarchy mounted at `mountPoint`, seen from the namespace that mounted it.
    public init(mountPoint: FilePath, ownCgroup: FilePath, isReadOnly: Bool) {
        self.init(
            mountPoint: mountPoint.string, ownCgroup: ownCgroup.string, isReadOnly: isReadOnly,
            namespaceView: (mountPoint.string, "/"))
    }

    init(mountPoint: String, ownCgroup: String, isReadOnly: Bool, namespaceView: (directory: String, shownAs: String)) {
        mountDirectory = mountPoint
        ownCgroupDirectory = ownCgroup
        self.isReadOnly = isReadOnly
        self.namespaceView = namespaceView
    }

    public static func == (lhs: CgroupHierarchy, rhs: CgroupHierarchy) -> Bool {
        lhs.mountDirectory == rhs.mountDirectory && lhs.ownCgroupDirectory == rhs.ownCgroupDirectory
            && lhs.isReadOnly == rhs.isReadOnly && lhs.namespaceView == rhs.namespaceView
    }

    /// The cgroup directory `path` (below the mount point) as this
    /// process's cgroup namespace names it in `/proc/PID/cgroup`; nil when
    /// the namespace cannot see it.
    func namespacePath(of path: String) -> String? {
        let directory = namespaceView.directory
        guard path == directory || path.hasPrefix(directory.hasSuffix("/") ? directory : directory + "/") else { return nil }
        return CgroupPath.join(namespaceView.shownAs, String(path.dropFirst(directory.count)))
    }

    /// Whether the hierarchy was mounted with `nsdelegate` (systemd's
    /// default): cgroup namespaces are then delegation boundaries, and a
    /// job member in its own namespace cannot migrate out of the job.
    /// Read from mountinfo at each call (discovery does not read it).
    public var hasNamespaceDelegation: Bool {
        guard case .success(let mountinfo) = FileContents.read("/proc/self/mountinfo") else { return false }
        return Cgroup2Mount.lines(of: mountinfo).lazy.compactMap(Cgroup2Mount.init(line:))
            .first { $0.mountPoint == mountDirectory }?.hasNamespaceDelegation ?? false
    }

    /// The cgroup delegated to the caller: its own cgroup, or the one above
    /// it when it sits in the `supervisor` leaf that
    /// `JobParent.moveCallerIntoLeaf()` makes (systemd's convention). Default
    /// and relative job parents, and enabling controllers, start from here.
    public var delegationRoot: FilePath { FilePath(delegationRootDirectory) }
    /// The same, as text.
    var delegationRootDirectory: String {
        CgroupPath.lastComponent(of: ownCgroupDirectory) == JobParent.supervisorLeafName && ownCgroupDirectory != mountDirectory
            ? CgroupPath.parent(of: ownCgroupDirectory) : ownCgroupDirectory
    }

    /// Where cgroup2 is usually mounted (pure v2, then hybrid hosts), in the
    /// order they are preferred when more than one is.
    static let usualMountPoints = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]

    /// Discovers the hierarchy of the calling process: by `probe` where
    /// cgroup2 is at a usual place, else from all of mountinfo.
    /// The last hierarchy the probe found, and the own cgroup it was found
    /// for: the mount is looked for once per process (and again when the
    /// process has moved to another cgroup); /proc/self/cgroup is read at
    /// every call.
    private static let discovered = Mutex<(relative: String, hierarchy: CgroupHierarchy)?>(nil)

    /// The cgroup2 hierarchy this process sees, and its own cgroup in it.
    public static func discover() throws(JobObjectError) -> CgroupHierarchy {
        let cgroup = try FileContents.read("/proc/self/cgroup")
            .orThrow("discover cgroup2", path: "/proc/self/cgroup", what: "read")
        let relative = ownRelativePath(procSelfCgroup: cgroup)
        if let relative, let known = discovered.withLock({ $0 }), known.relative == relative { return known.hierarchy }
        if let relative, let found = probe(relative: relative) {
            discovered.withLock { $0 = (relative, found) }
            return found
        }
        let mountinfo = try FileContents.read("/proc/self/mountinfo")
            .orThrow("discover cgroup2", path: "/proc/self/mountinfo", what: "read")
        return try parse(mountinfo: mountinfo, procSelfCgroup: cgroup)
    }

    /// The `0::` path of /proc/self/cgroup, relative to the root the kernel
    /// shows this process (its cgroup namespace's).
    /// Scanned as UTF-8 bytes: this runs once in every process that makes a
    /// job, where the first use of generic line splitting costs more than
    /// the read (Benchmarks/ANALYSIS.md).
    static func ownRelativePath(procSelfCgroup: String) -> String? {
        let bytes = procSelfCgroup.utf8
        var lineStart = bytes.startIndex
        while lineStart < bytes.endIndex {
            let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            let line = bytes[lineStart..<lineEnd]
            if line.starts(with: "0::".utf8) {
                let relative = Substring(line.dropFirst(3))
                return String(relative.hasSuffix(" (deleted)") ? relative.dropLast(10) : relative)
            }
            lineStart = lineEnd == bytes.endIndex ? lineEnd : bytes.index(after: lineEnd)
        }
        return nil
    }

    /// Parses the two files; separate from `discover` so it can be tested on
    /// the mount tables of other hosts.
    static func parse(mountinfo: String, procSelfCgroup: String) throws(JobObjectError) -> CgroupHierarchy {
        let mounts = Cgroup2Mount.lines(of: mountinfo).compactMap(Cgroup2Mount.init(line:))
        let preferred = usualMountPoints.lazy.compactMap { place in mounts.first { $0.mountPoint == place } }.first
        guard let mount = preferred ?? mounts.first else {
            throw JobObjectError(
                .cgroup2NotMounted,
                "no cgroup2 file system is mounted; mount one (mount -t cgroup2 none /sys/fs/cgroup) or boot with systemd.unified_cgroup_hierarchy=1",
                operation: "discover cgroup2", path: "/proc/self/mountinfo")
        }
        guard var relative = ownRelativePath(procSelfCgroup: procSelfCgroup) else {
            throw JobObjectError(
                .cgroup2NotMounted,
                "this process has no cgroup2 membership (no 0:: line in /proc/self/cgroup); the kernel must have cgroup2 enabled",
                operation: "discover cgroup2", path: "/proc/self/cgroup")
        }
        if let levels = levelsAboveNamespace(mountRoot: mount.root) {
            guard let root = namespaceRoot(levels: levels, relative: relative, mountPoint: mount.mountPoint) else {
                throw JobObjectError(
                    .cgroup2NotMounted,
                    "this process runs in a cgroup namespace whose root the cgroup2 mount at \(mount.mountPoint) does not show by name, and its cgroup was not found below it; mount cgroup2 inside the namespace (mount -t cgroup2 none \(mount.mountPoint))",
                    operation: "discover cgroup2", path: mount.mountPoint)
            }
            return CgroupHierarchy(
                mountPoint: mount.mountPoint, ownCgroup: CgroupPath.join(root, relative), isReadOnly: mount.isReadOnly,
                namespaceView: (root, "/"))
        }
        // Inside a cgroup namespace or a bind-mounted subtree, the mount shows
        // only part of the tree: drop the part above the mount's root.
        if mount.root != "/", relative.hasPrefix(mount.root) {
            relative = String(relative.dropFirst(mount.root.count))
        }
        return CgroupHierarchy(
            mountPoint: mount.mountPoint, ownCgroup: CgroupPath.join(mount.mountPoint, relative),
            isReadOnly: mount.isReadOnly, namespaceView: (mount.mountPoint, mount.root))
    }
}

/// One `cgroup2` line of mountinfo.
struct Cgroup2Mount {
    let root: String
    let mountPoint: String
    let isReadOnly: Bool
    let hasNamespaceDelegation: Bool

    /// Fields: id parent major:minor root mountpoint options [optional…] - fstype source superoptions
    init?(line: Substring) {
        let fields = line.split(separator: " ")
        guard let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, dash >= 6,
            fields[dash + 1] == "cgroup2"
        else { return nil }
        root = Cgroup2Mount.unescape(fields[3])
        mountPoint = Cgroup2Mount.unescape(fields[4])
        isReadOnly = fields[5].split(separator: ",").contains("ro")
        // nsdelegate is a super block option: the hierarchy's, whatever mount shows it.
        hasNamespaceDelegation = dash + 3 < fields.count && fields[dash + 3].split(separator: ",").contains("nsdelegate")
    }

    /// The lines of mountinfo whose file system type is cgroup2: those that
    /// hold " - cgroup2 " (mountinfo escapes spaces inside fields, so this is
    /// the separator and the type field). Searched for in the bytes, with
    /// memchr and memcmp: a long mountinfo split into fields line by line
    /// costs more than everything else a process does to make its first job.
    static func lines(of mountinfo: String) -> [Substring] {
        var mountinfo = mountinfo
        return mountinfo.withUTF8 { text -> [Substring] in
            let marker: StaticString = " - cgroup2 "
            let newline = UInt8(ascii: "\n")
            guard let base = text.baseAddress, text.count >= marker.utf8CodeUnitCount else { return [] }
            var found: [Substring] = []
            var at = 0
            // Each space that starts the marker, up to the last place it fits.
            while at <= text.count - marker.utf8CodeUnitCount,
                let space = memchr(base + at, Int32(UInt8(ascii: " ")), text.count - marker.utf8CodeUnitCount + 1 - at)
            {
                at = base.distance(to: space.assumingMemoryBound(to: UInt8.self))
                guard memcmp(base + at, marker.utf8Start, marker.utf8CodeUnitCount) == 0 else {
                    at += 1
                    continue
                }
                var start = at
                while start > 0, text[start - 1] != newline { start -= 1 }
                var end = at + marker.utf8CodeUnitCount
                while end < text.count, text[end] != newline { end += 1 }
                found.append(Substring(decoding: UnsafeBufferPointer(rebasing: text[start..<end]), as: UTF8.self))
                at = end
            }
            return found
        }
    }

    /// mountinfo writes space, tab, newline and backslash as \ooo octal.
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
                let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Joining cgroup paths without doubled or trailing slashes.
enum CgroupPath {
    static func join(_ base: String, _ tail: String) -> String {
        // Appended component by component: `joined(separator:)` on the
        // split is not specialized, and its first use costs a runtime
        // type lookup that scans every conformance record of the binary.
        var path = base
        for component in tail.split(separator: "/") {
            if !path.hasSuffix("/") { path += "/" }
            // String(_:) first: += of a Substring is the generic append.
            path += String(component)
        }
        return path
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func lastComponent(of path: String) -> String {
        String(path.split(separator: "/").last ?? "")
    }
}

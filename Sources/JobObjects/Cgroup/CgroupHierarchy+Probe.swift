import CJobShim
import Glibc

extension CgroupHierarchy {
    /// cgroup2's file system magic (linux/magic.h).
    private static let cgroup2Magic: Int64 = 0x6367_7270

    /// The hierarchy found without reading mountinfo, which the kernel
    /// generates line by line on each read (slow on a host with many
    /// mounts, see Benchmarks/ANALYSIS.md): the first usual
    /// mount point that is a cgroup2 mount, and in it the `relative` cgroup.
    /// Where the kernel has statmount(2) it tells what mountinfo would
    /// (`described`); before Linux 6.8 the own `cgroup.procs` confirms it
    /// (`confirmed`). Returns nil whenever a step cannot be confirmed;
    /// `discover` then reads mountinfo.
    static func probe(
        mountPoints: [String] = usualMountPoints, relative: String,
        pid: pid_t = getpid()
    ) -> CgroupHierarchy? {
        switch described(mountPoints: mountPoints, relative: relative) {
        case .found(let hierarchy): hierarchy
        case .notFound: nil
        case .unavailable: confirmed(mountPoints: mountPoints, relative: relative, pid: pid)
        }
    }

    enum Probed: Equatable {
        case found(CgroupHierarchy)
        case notFound
        /// statmount(2) is missing (before Linux 6.8) or refused.
        case unavailable
    }

    /// The probe by statx(2) and statmount(2): the mount's root tells which
    /// part of the hierarchy it shows, as mountinfo's root field would.
    static func described(mountPoints: [String], relative: String) -> Probed {
        for mountPoint in mountPoints {
            var magic: Int64 = 0
            var readOnly: Int32 = 0
            let (found, root) = withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(PATH_MAX)) { buffer in
                let found = jobshim_mount_at(mountPoint, &magic, &readOnly, buffer.baseAddress!, buffer.count)
                return (found < 0 ? -Glibc.errno : found, found == 1 ? String(cString: buffer.baseAddress!) : "")
            }
            switch found {
            case -ENOENT: continue
            case 1 where magic != cgroup2Magic: continue
            case 1:
                // The whole hierarchy as this process sees it, or a subtree
                // that holds the process's cgroup.
                let own: String
                if root == "/" {
                    own = CgroupPath.join(mountPoint, relative)
                } else if relative == root || relative.hasPrefix(root + "/") {
                    own = CgroupPath.join(mountPoint, String(relative.dropFirst(root.count)))
                } else {
                    return .notFound
                }
                return .found(
                    CgroupHierarchy(
                        mountPoint: mountPoint, ownCgroup: own, isReadOnly: readOnly != 0, namespaceView: (mountPoint, root)))
            // A directory, not the root of a mount (of cgroup2 mounted above, perhaps).
            case 0: return .notFound
            default: return .unavailable
            }
        }
        return .notFound
    }

    /// The probe where statmount(2) is missing: statfs of the mount point,
    /// its device against its parent's (the mount itself, not a directory of
    /// a cgroup2 mounted above it), and `pid` in the `relative` cgroup's
    /// `cgroup.procs`. That confirmation is what mountinfo's root field would
    /// give: a mount that shows only a subtree (a bind mount, another
    /// namespace's mount) fails it.
    static func confirmed(mountPoints: [String], relative: String, pid: pid_t) -> CgroupHierarchy? {
        for mountPoint in mountPoints {
            var magic: Int64 = 0
            var flags: Int64 = 0
            guard jobshim_file_system(mountPoint, &magic, &flags) == 0, magic == cgroup2Magic else { continue }
            var here = stat()
            var above = stat()
            guard stat(mountPoint, &here) == 0, stat(CgroupPath.parent(of: mountPoint), &above) == 0,
                here.st_dev != above.st_dev
            else { return nil }
            let ownCgroup = CgroupPath.join(mountPoint, relative)
            guard case .success(let members) = FileContents.read(ownCgroup + "/cgroup.procs"),
                lists(pid, members)
            else { return nil }
            // ST_RDONLY (sys/statvfs.h): statfs reports the mount's flags.
            return CgroupHierarchy(
                mountPoint: mountPoint, ownCgroup: ownCgroup, isReadOnly: flags & 1 != 0, namespaceView: (mountPoint, "/"))
        }
        return nil
    }

    /// Whether `pid` is one of the decimal numbers, one per line, of
    /// `cgroup.procs`. A byte scan rather than lines and Int32 parsing: the
    /// list is the hierarchy root's when the caller runs there (every
    /// process not in a cgroup of its own), and the first use of the
    /// generic parsing costs more than the read.
    static func lists(_ pid: pid_t, _ procs: String) -> Bool {
        var value: Int64 = 0
        var inNumber = false
        for byte in procs.utf8 {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                value = value &* 10 &+ Int64(byte - UInt8(ascii: "0"))
                inNumber = true
            } else {
                if inNumber && value == Int64(pid) { return true }
                value = 0
                inNumber = false
            }
        }
        return inNumber && value == Int64(pid)
    }
}

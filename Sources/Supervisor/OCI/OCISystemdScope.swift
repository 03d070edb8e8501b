import Glibc
import JobObjects

/// Where a container's job goes under `--systemd-cgroup`: `linux.cgroupsPath`
/// is `slice:prefix:name` (the kubelet's and podman's systemd form), and the
/// job is made inside the transient scope `prefix-name.scope` in `slice`,
/// which systemd makes with `Delegate=yes`, as runc's and crun's systemd
/// drivers do. An empty path is `system.slice:jobsup-runc:ID`.
///
/// A scope cannot be started empty, so create starts it holding itself, then
/// moves into a leaf of it (a cgroup holding processes cannot pass
/// controllers down to the job), makes the job and spawns init there, and
/// moves back out. The scope then holds only the job; systemd stops and
/// removes it once the job's last process is gone.
struct OCISystemdScope {
    let slice: String
    let unit: String
    /// The leaf create waits in while it makes the job.
    static let leafName = "jobsup-runc-create"

    init(cgroupsPath: String?, id: String) throws(OCIRuntimeError) {
        let given = cgroupsPath ?? ""
        let parts =
            given.isEmpty ? ["", "jobsup-runc", id] : given.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts[2].isEmpty else {
            throw OCIRuntimeError(
                "linux.cgroupsPath \"\(given.prefix(200))\" is not systemd's slice:prefix:name form, which --systemd-cgroup takes (e.g. system.slice:jobsup:\(id.prefix(64))); without --systemd-cgroup it is a cgroupfs path"
            )
        }
        let slice = parts[0].isEmpty ? "system.slice" : parts[0]
        guard Self.isSliceName(slice) else {
            throw OCIRuntimeError(
                "the slice \"\(slice.prefix(200))\" in linux.cgroupsPath is not a systemd slice name: a-b.slice, of letters, digits and :_.\\ with single dashes between the parts, or -.slice"
            )
        }
        if parts[2].hasSuffix(".slice") {
            throw OCIRuntimeError(
                "linux.cgroupsPath \"\(given.prefix(200))\" names a slice as the container's unit; jobsup-runc puts each container in a scope: give a name without .slice"
            )
        }
        let unit = (parts[1].isEmpty ? "" : parts[1] + "-") + parts[2] + ".scope"
        guard Self.isUnitName(unit) else {
            throw OCIRuntimeError(
                "the unit \"\(unit.prefix(200))\" that linux.cgroupsPath names is not a valid systemd unit name: at most 255 bytes of letters, digits and :-_.\\"
            )
        }
        guard access("/run/systemd/system", F_OK) == 0 else {
            throw OCIRuntimeError(
                "--systemd-cgroup: systemd does not manage this machine (no /run/systemd/system); use the cgroupfs driver (containerd: SystemdCgroup = false; podman: --cgroup-manager cgroupfs)"
            )
        }
        self.slice = slice
        self.unit = unit
    }

    /// Has systemd make the scope with this process in it, and moves on into
    /// the scope's leaf. Returns the scope's directory and the cgroup to go
    /// back to.
    func enter(id: String) throws(OCIRuntimeError) -> (scope: String, origin: String) {
        do {
            return try SystemdScope.enter(
                unit, slice: slice, leaf: Self.leafName, description: "jobsup-runc container \(id)",
                otherwise:
                    "without --systemd-cgroup, jobsup-runc makes the job at a cgroupfs path itself (containerd: SystemdCgroup = false; podman: --cgroup-manager cgroupfs)"
            )
        } catch {
            throw OCIRuntimeError(error.message)
        }
    }

    /// Moves this process back to where it came from and removes the leaf.
    func leave(origin: String, scope: String) {
        SystemdScope.leave(Self.leafName, of: scope, to: origin)
    }

    /// systemd's rule: `-.slice` (the root), or parts of unit-name
    /// characters joined by single dashes, ending in `.slice`.
    static func isSliceName(_ name: String) -> Bool {
        if name == "-.slice" { return true }
        guard name.hasSuffix(".slice"), isUnitName(name) else { return false }
        let stem = name.dropLast(6)
        return !stem.isEmpty && !stem.hasPrefix("-") && !stem.hasSuffix("-") && !stem.contains("--")
    }

    static func isUnitName(_ name: String) -> Bool {
        name.utf8.count <= 255
            && name.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || ":-_.\\".utf8.contains(byte)
            }
    }
}

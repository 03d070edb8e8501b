import Glibc
import SystemPackage

/// One cgroup directory held open by a descriptor: reads and writes its
/// interface files relative to that descriptor, so a rename of an ancestor
/// cannot redirect them.
final class CgroupDirectory: Sendable {
    let path: String
    /// O_DIRECTORY descriptor; also the CLONE_INTO_CGROUP target.
    let fd: CInt

    init(opening path: String) throws(JobObjectError) {
        self.path = path
        fd = try Syscall.open(path, O_RDONLY | O_DIRECTORY).orThrow("open job", path: path, what: "open cgroup directory")
    }

    deinit { Syscall.close(fd) }

    func read(_ name: String) throws(JobObjectError) -> String {
        try FileContents.read(at: fd, name).orThrow("read \(name)", path: path + "/" + name, what: "read")
    }

    func write(_ name: String, _ value: String) throws(JobObjectError) {
        try FileContents.write(at: fd, name, value).orThrow(
            "write \(name)", path: path + "/" + name, what: "write \(String(reflecting: value)) to")
    }

    func has(_ name: String) -> Bool {
        faccessat(fd, name, F_OK, 0) == 0
    }

    /// cgroup.events: whether any process is in this cgroup or below, and
    /// whether it is frozen.
    func events() throws(JobObjectError) -> CgroupEvents {
        CgroupEvents(try read("cgroup.events"))
    }

    /// The pids of cgroup.procs here and in every descendant cgroup.
    func memberPIDs() throws(JobObjectError) -> [pid_t] {
        var pids: [pid_t] = []
        for directory in [path] + descendants() {
            guard case .success(let text) = FileContents.read(directory + "/cgroup.procs") else { continue }
            pids += text.nonEmptyLines.compactMap { pid_t($0) }
        }
        return pids
    }

    /// Child cgroup directories, deepest first (the order to remove them in).
    func descendants() -> [String] {
        var result: [String] = []
        func visit(_ directory: String) {
            let names = (try? Syscall.listDirectory(directory, directoriesOnly: true).get()) ?? []
            for child in names.map({ directory + "/" + $0 }) {
                visit(child)
                result.append(child)
            }
        }
        visit(path)
        return result
    }
}

/// The keys of cgroup.events.
public struct CgroupEvents: Sendable, Equatable {
    /// Some process is in the cgroup or one of its descendants.
    public var populated: Bool
    /// The cgroup is fully frozen.
    public var frozen: Bool

    init(populated: Bool, frozen: Bool) {
        self.populated = populated
        self.frozen = frozen
    }

    init(_ text: String) {
        populated = text.value(ofKey: "populated") == "1"
        frozen = text.value(ofKey: "frozen") == "1"
    }
}

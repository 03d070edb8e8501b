import CJobShim
import Glibc

/// Which process holds a kill-on-close job, kept on the job's cgroup as the
/// extended attribute `user.jobobjects.owner`: "PID START PIDNS" (the
/// owner's pid, its start time from /proc/PID/stat, the inode of its pid
/// namespace).
///
/// The watchdog ends a job when its owner dies. Should the watchdog be gone
/// too (killed along with its owner, say), the record is how any later
/// process tells that the job is abandoned (`JobParent.reclaimAbandonedJobs`,
/// `jobsup reclaim`). cgroupfs keeps `user.` attributes since Linux 5.7;
/// before, or where the write is refused, a job simply has no record and is
/// never taken for abandoned.
package struct JobOwnerRecord: Equatable, CustomStringConvertible {
    static let attribute = "user.jobobjects.owner"

    package let owner: ProcessIdentity
    package let pidNamespace: UInt64

    /// This process, read once per process.
    static let current: JobOwnerRecord? = ProcessIdentity(pid: getpid()).map {
        JobOwnerRecord(owner: $0, pidNamespace: ownPidNamespace)
    }

    private static var ownPidNamespace: UInt64 {
        var info = stat()
        return stat("/proc/self/ns/pid", &info) == 0 ? UInt64(info.st_ino) : 0
    }

    package var description: String { "\(owner.pid) \(owner.startTime) \(pidNamespace)" }

    init(owner: ProcessIdentity, pidNamespace: UInt64) {
        self.owner = owner
        self.pidNamespace = pidNamespace
    }

    init?(parsing text: String) {
        let fields = text.split(separator: " ")
        guard fields.count == 3, let pid = pid_t(fields[0]), pid > 0, let start = UInt64(fields[1]),
            let namespace = UInt64(fields[2])
        else { return nil }
        self.init(owner: ProcessIdentity(pid: pid, startTime: start), pidNamespace: namespace)
    }

    /// Marks the cgroup open as `fd` as this process's; false when the
    /// kernel keeps no such attribute there.
    @discardableResult
    static func markOwned(_ fd: CInt) -> Bool {
        current?.write(fd) ?? false
    }

    /// Puts this record on the cgroup open as `fd`.
    func write(_ fd: CInt) -> Bool {
        let text = description
        return fsetxattr(fd, Self.attribute, text, text.utf8.count, 0) == 0
    }

    /// This process no longer kills the job (it detached it): its record
    /// goes, but not one another process wrote since (that one still owns
    /// the job).
    static func clear(_ fd: CInt) {
        guard let current, read(fd) == current else { return }
        _ = fremovexattr(fd, attribute)
    }

    /// The record on the cgroup at `path`, if it has one.
    static func read(_ path: String) -> JobOwnerRecord? {
        guard let directory = try? CgroupDirectory(opening: path) else { return nil }
        return read(directory.fd)
    }

    /// The record on the cgroup open as `fd`, if it has one.
    static func read(_ fd: CInt) -> JobOwnerRecord? {
        var buffer = [CChar](repeating: 0, count: 64)
        let length = fgetxattr(fd, attribute, &buffer, buffer.count)
        guard length > 0 else { return nil }
        return JobOwnerRecord(parsing: String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// Whether the owner is certainly gone: it was in this process's pid
    /// namespace (else its pid means nothing here) and no process has its
    /// pid, or one that started at another time, or it is a zombie. A
    /// process that cannot be looked at (/proc mounted with hidepid) counts
    /// as alive.
    var ownerIsGone: Bool {
        guard let current = Self.current, pidNamespace == current.pidNamespace, owner != current.owner else { return false }
        if kill(owner.pid, 0) != 0 && errno == ESRCH { return true }
        guard let start = ProcessIdentity.startTime(of: owner.pid) else { return false }
        return start != owner.startTime || !owner.isAlive
    }
}

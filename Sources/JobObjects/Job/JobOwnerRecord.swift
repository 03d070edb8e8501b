import CJobShim
import Glibc

/// Which processes hold a kill-on-close job, kept on the job's cgroup as the
/// extended attribute `user.jobobjects.owner`: one line "PID START PIDNS"
/// per holder (its pid, its start time from /proc/PID/stat, the inode of its
/// pid namespace) — the creator, and each process that opened the job to
/// kill it on close.
///
/// Each holder's watchdog ends the job when that holder dies. Should the
/// watchdog be gone too (killed along with its owner, say), the record is
/// how any later process tells that the job is abandoned: a holder is gone
/// and nothing ended the job (`JobParent.reclaimAbandonedJobs`,
/// `jobsup reclaim`). cgroupfs keeps `user.` attributes since Linux 5.7;
/// before, or where the write is refused, a job simply has no record and is
/// never taken for abandoned.
package struct JobOwnerRecord: Equatable, CustomStringConvertible {
    static let attribute = "user.jobobjects.owner"
    /// Room for the record of many holders; a longer value is never written.
    static let maximumLength = 4096

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

    init?(parsing text: Substring) {
        let fields = text.split(separator: " ")
        guard fields.count == 3, let pid = pid_t(fields[0]), pid > 0, let start = UInt64(fields[1]),
            let namespace = UInt64(fields[2])
        else { return nil }
        self.init(owner: ProcessIdentity(pid: pid, startTime: start), pidNamespace: namespace)
    }

    /// Adds this process to the holders of the cgroup open as `fd`; false
    /// when the kernel keeps no such attribute there. Two processes adding
    /// themselves at the same instant may lose one line: that holder's job
    /// is then not known to be abandoned after its death (its watchdog still
    /// ends it).
    @discardableResult
    static func markOwned(_ fd: CInt) -> Bool {
        guard let current else { return false }
        let holders = read(fd)
        return holders.contains(current) || write(holders + [current], to: fd)
    }

    /// Writes `records` as the holders of the cgroup open as `fd`.
    static func write(_ records: [JobOwnerRecord], to fd: CInt) -> Bool {
        let text = records.map(\.description).joined(separator: "\n")
        guard text.utf8.count <= maximumLength else { return false }
        return fsetxattr(fd, Self.attribute, text, text.utf8.count, 0) == 0
    }

    /// This process no longer kills the job (it detached it): its line
    /// goes, and the others stay (those processes still hold the job).
    static func clear(_ fd: CInt) {
        guard let current else { return }
        let holders = read(fd)
        guard holders.contains(current) else { return }
        let others = holders.filter { $0 != current }
        if others.isEmpty { _ = fremovexattr(fd, attribute) } else { _ = write(others, to: fd) }
    }

    /// The holders recorded on the cgroup at `path`.
    static func read(_ path: String) -> [JobOwnerRecord] {
        guard let directory = try? CgroupDirectory(opening: path) else { return [] }
        return read(directory.fd)
    }

    /// The holders recorded on the cgroup open as `fd`; lines that do not
    /// parse are skipped.
    static func read(_ fd: CInt) -> [JobOwnerRecord] {
        var buffer = [UInt8](repeating: 0, count: maximumLength)
        let length = fgetxattr(fd, attribute, &buffer, buffer.count)
        guard length > 0 else { return [] }
        return String(decoding: buffer[..<length], as: UTF8.self).split(separator: "\n").compactMap(JobOwnerRecord.init(parsing:))
    }

    /// Whether a job with these holders is abandoned: one of them is
    /// certainly gone, so its kill-on-close promise was not kept.
    static func isAbandoned(_ holders: [JobOwnerRecord]) -> Bool {
        holders.contains { $0.ownerIsGone }
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

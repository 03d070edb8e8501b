import JobObjects
import Glibc
import Synchronization
import SystemPackage

/// A uid allocated to one job (HostProcess's "run as a local group").
///
/// A uid is free when no passwd entry names it, no process runs with it,
/// and no other job holds its lock: /run/jobobjects/.uids/UID, held with
/// `flock` for as long as the job lives. The kernel drops a flock when its
/// last holder dies, so a crash can never leave a uid taken for good, and
/// the payload janitor inherits the lock so that a uid stays taken until
/// the job is empty even when the owner dies first.
package final class EphemeralUserLease: Sendable, CustomStringConvertible {
    package let uid: uid_t
    /// The lock file.
    let path: String
    /// The locked descriptor (close-on-exec; the janitor gets a copy).
    let lockFD: CInt
    private let released = Atomic<Bool>(false)

    private init(uid: uid_t, path: String, lockFD: CInt) {
        self.uid = uid
        self.path = path
        self.lockFD = lockFD
    }

    deinit { release() }

    /// Takes the first free uid of `range` for job `job`.
    package static func allocate(in range: ClosedRange<UInt32>, job: String) throws(JobObjectError) -> EphemeralUserLease {
        let running = processUIDs()
        var uid = range.lowerBound
        while true {
            if !running.contains(uid), UserDatabase.user(id: uid) == nil,
                let lease = try claim(uid, job: job)
            {
                return lease
            }
            if uid == range.upperBound { break }
            uid += 1
        }
        throw JobObjectError(
            .invalidArgument,
            "no free uid in \(range.lowerBound)-\(range.upperBound): each has a passwd entry, a running process or another job; widen securityContext.ephemeralUser.uidRange",
            operation: "allocate ephemeral user")
    }

    /// Locks uid's file; nil when another job holds it or a process runs with it.
    private static func claim(_ uid: uid_t, job: String) throws(JobObjectError) -> EphemeralUserLease? {
        let path = PayloadPaths.uidLocks + "/\(uid)"
        for _ in 0..<5 {
            try PayloadStateDirectory.ensure(PayloadPaths.uidLocks, mode: 0o700)
            let fd: CInt
            switch Syscall.open(path, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600) {
            case .success(let opened): fd = opened
            case .failure(.noSuchFileOrDirectory): continue  // the directory was just removed by a finishing job
            case .failure(let errno):
                throw JobObjectError.system(errno, operation: "allocate ephemeral user", path: path, what: "open the uid lock")
            }
            switch Syscall.lockExclusiveNonBlocking(fd) {
            case .success: break
            case .failure(.resourceTemporarilyUnavailable):
                Syscall.close(fd)
                return nil
            case .failure(let errno):
                Syscall.close(fd)
                throw JobObjectError.system(errno, operation: "allocate ephemeral user", path: path, what: "lock")
            }
            // The previous holder may have unlinked the file between our
            // open and our lock: then the lock is on a file nobody else sees.
            guard case .success(let held) = Syscall.fileStatus(fd: fd), case .success(let named) = Syscall.fileStatus(path),
                held.st_ino == named.st_ino, held.st_dev == named.st_dev
            else {
                Syscall.close(fd)
                continue
            }
            // A process may have taken the uid since the scan (outside any job).
            if processUIDs().contains(uid) {
                _ = Syscall.unlink(path)
                Syscall.close(fd)
                return nil
            }
            let record = "\(ProcessIdentity.current) \(job)\n"
            _ = Syscall.ftruncate(fd, 0)
            _ = FileContents.write(fd: fd, record)
            return EphemeralUserLease(uid: uid, path: path, lockFD: fd)
        }
        return nil
    }

    /// Gives the uid back: the file goes first, then the lock.
    package func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = Syscall.unlink(path)
        Syscall.close(lockFD)
    }

    /// Every uid (real, effective, saved, filesystem) of every process.
    static func processUIDs() -> Set<uid_t> {
        guard case .success(let names) = Syscall.listDirectory("/proc") else { return [] }
        var uids = Set<uid_t>()
        for name in names where name.first?.isNumber == true {
            guard case .success(let status) = FileContents.read("/proc/\(name)/status"),
                let line = status.nonEmptyLines.first(where: { $0.hasPrefix("Uid:") })
            else { continue }
            for field in line.dropFirst(4).split(whereSeparator: { $0 == "\t" || $0 == " " }) {
                if let uid = uid_t(field) { uids.insert(uid) }
            }
        }
        return uids
    }

    package var description: String { "uid \(uid)" }
}

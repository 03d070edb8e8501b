import JobObjects
import Glibc
import SystemPackage

/// The state root /run/jobobjects, shared by every payload of every
/// process: made on demand, removed once empty, and swept for storage that
/// both an owner and its janitor left behind.
enum PayloadStateDirectory {
    /// Creates `path` (and the state root above it) when missing.
    static func ensure(_ path: String, mode: mode_t) throws(JobObjectError) {
        if path != PayloadPaths.stateRoot { try ensure(PayloadPaths.stateRoot, mode: 0o755) }
        switch Syscall.mkdir(path, mode) {
        case .success, .failure(.fileExists): return
        case .failure(let errno):
            throw JobObjectError(
                errno == .readOnlyFileSystem || errno == .permissionDenied ? .parentNotWritable : .systemCallFailed,
                "cannot create \(path) for payload state (payloads need a writable /run, as root)",
                operation: "prepare payload storage", path: path, errno: errno)
        }
    }

    /// Removes the uid-lock directory and the state root if nothing is in
    /// them (another payload's files keep them, and that is fine).
    static func removeIfEmpty() {
        _ = Syscall.rmdir(PayloadPaths.uidLocks)
        _ = Syscall.rmdir(PayloadPaths.stateRoot)
    }

    /// Releases the storage of every payload whose owner and janitor are
    /// both gone (e.g. killed together with their service's cgroup): kills
    /// what is left of its job, unmounts its host-visible mounts, removes
    /// what it created and its uid lock. Returns the names reclaimed.
    @discardableResult
    static func reclaimStale() -> [String] {
        guard case .success(let names) = Syscall.listDirectory(PayloadPaths.stateRoot) else { return [] }
        var reclaimed: [String] = []
        for name in names {
            let path = PayloadPaths.stateRoot + "/" + name
            if name.hasPrefix(".new-") {
                // A storage directory that was never published: its maker died in between.
                let parts = name.split(separator: "-")
                if parts.count >= 3, let pid = pid_t(parts[1]), let start = UInt64(parts[2]),
                    !ProcessIdentity(pid: pid, startTime: start).isAlive
                {
                    _ = Syscall.unlink(path + "/" + PayloadPaths.recordName)
                    _ = Syscall.rmdir(path)
                }
                continue
            }
            if name.hasPrefix(".") { continue }
            guard case .success(let text) = FileContents.read(path + "/" + PayloadPaths.recordName),
                let record = PayloadRecord(parsing: text)
            else { continue }
            if record.owner.isAlive || record.janitor?.isAlive == true { continue }
            reclaim(root: path, record)
            reclaimed.append(name)
        }
        removeIfEmpty()
        return reclaimed
    }

    /// Releases one payload's storage, every step whatever the others did.
    static func reclaim(root: String, _ record: PayloadRecord) {
        if let cgroup = record.cgroup, let id = record.cgroupID { AbandonedJob.killAndRemove(path: cgroup, cgroupID: id) }
        for target in record.mounts.reversed() { _ = Syscall.umount(target, detach: true) }
        _ = Syscall.unlink(root + "/" + PayloadPaths.recordName)
        for path in record.created.reversed() {
            _ = path.isDirectory ? Syscall.rmdir(path.path) : Syscall.unlink(path.path)
        }
        if let lock = record.uidLock, case .success(let fd) = Syscall.open(lock, O_RDWR | O_NOFOLLOW) {
            // Only a lock nobody holds is stale (a live job may have taken
            // the uid since), and only if the name is still that file.
            if case .success = Syscall.lockExclusiveNonBlocking(fd),
                case .success(let held) = Syscall.fileStatus(fd: fd), case .success(let named) = Syscall.fileStatus(lock),
                held.st_ino == named.st_ino, held.st_dev == named.st_dev
            {
                _ = Syscall.unlink(lock)
            }
            Syscall.close(fd)
        }
    }
}

import CJobShim
import Glibc
import Synchronization

/// Ending a job that no handle holds any more: its owner died and its
/// watchdog with it, or the job of a payload whose owner is gone. Runs
/// outside any handle, so it is synchronous and bounded.
package enum AbandonedJob {
    /// How long a killed job is given to empty before its removal is given
    /// up, in waits of `wakeUpMilliseconds` at most (SIGKILLed processes go in
    /// microseconds to milliseconds; one in uninterruptible sleep can take
    /// longer).
    static let emptyingWaits = 200
    /// The longest wait for the kernel's notification: it drops one that
    /// comes within its 10 ms rate limit of the last, so the state is read
    /// again after this.
    static let wakeUpMilliseconds: CInt = 100

    /// `killAndRemove(_:)` of the cgroup at `path`, if it is still the one
    /// whose inode (its id) is `cgroupID` (a later job may have the same
    /// path): for the payload state sweep. Returns whether it is gone.
    @discardableResult
    package static func killAndRemove(path: String, cgroupID: UInt64) -> Bool {
        guard let directory = try? CgroupDirectory(opening: path) else { return access(path, F_OK) != 0 }
        var info = stat()
        guard fstat(directory.fd, &info) == 0 else { return false }
        if UInt64(info.st_ino) != cgroupID { return true }
        return killAndRemove(directory)
    }

    /// Kills every process in the cgroup open as `directory`, waits for
    /// `cgroup.events` to say it is empty (woken by the kernel's EPOLLPRI
    /// notification, here through poll), and removes it with any cgroups
    /// made inside it. Returns whether it is gone.
    static func killAndRemove(_ directory: CgroupDirectory) -> Bool {
        if case .failure = FileContents.write(at: directory.fd, "cgroup.kill", "1") {
            _ = jobshim_kill_frozen_members(directory.fd, 10)
        }
        if case .success(let events) = Syscall.openat(directory.fd, "cgroup.events", O_RDONLY) {
            defer { Syscall.close(events) }
            var watched = pollfd(fd: events, events: Int16(POLLPRI), revents: 0)
            for _ in 0..<emptyingWaits {
                guard case .success(let text) = FileContents.read(fd: events), CgroupEvents(text).populated else { break }
                _ = poll(&watched, 1, wakeUpMilliseconds)
            }
        }
        for cgroup in directory.descendants() + [directory.path] { _ = Syscall.rmdir(cgroup) }
        return access(directory.path, F_OK) != 0
    }

    /// How `waitUntilEmpty(path:cgroupID:orExitOf:)` ended.
    package enum WaitOutcome: Equatable {
        /// No process is left in the cgroup, or it is gone (or is another cgroup by now).
        case emptied
        /// The process behind the pidfd exited first.
        case processExited
    }

    /// Blocks until the cgroup at `path` (inode `cgroupID`) holds no process
    /// or is gone, or until the process behind `pidfd` exits: one `poll` on
    /// the pidfd and `cgroup.events`, no thread and no event loop, for a
    /// helper process that does nothing but watch.
    package static func waitUntilEmpty(path: String, cgroupID: UInt64, orExitOf pidfd: CInt) -> WaitOutcome {
        guard case .success(let events) = Syscall.open(path + "/cgroup.events", O_RDONLY | O_CLOEXEC) else { return .emptied }
        defer { Syscall.close(events) }
        var info = stat()
        guard stat(path, &info) == 0, UInt64(info.st_ino) == cgroupID else { return .emptied }
        var watched = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0), pollfd(fd: events, events: Int16(POLLPRI), revents: 0)]
        while true {
            // A removed cgroup's file reads as an error; the kernel's
            // notification can be dropped, hence the timeout.
            guard case .success(let text) = FileContents.read(fd: events), CgroupEvents(text).populated else { return .emptied }
            _ = poll(&watched, 2, 1000)
            if watched[0].revents != 0 { return .processExited }
        }
    }
}

extension JobObject {
    /// Whether a process that held the job to kill it on close (its
    /// creator, or one that opened it so) is gone and the job still exists:
    /// its owner record names a process that no longer exists, so that
    /// nothing will remove the job but whoever finds it. False for a job
    /// whose holders live, and for one with no record (detached jobs).
    public var isAbandoned: Bool {
        JobOwnerRecord.isAbandoned(JobOwnerRecord.read(cgroupPath))
    }

    /// Kills and removes the job, and its parent when that removes itself
    /// and is left empty, if it is abandoned (`isAbandoned`); the handle is
    /// then closed. Returns whether it did. A management tool that killed a
    /// job calls this so that a job nobody supervises leaves no cgroup.
    @discardableResult
    public func reclaimIfAbandoned() -> Bool {
        guard JobOwnerRecord.isAbandoned(JobOwnerRecord.read(directory.fd)), AbandonedJob.killAndRemove(directory) else { return false }
        markClosed()
        parent.removeIfUnused()
        return true
    }
}

extension JobParent {
    /// Ends every job under this parent whose owner is gone and whose
    /// watchdog did not end it (both killed at once, say): each kill-on-close
    /// job records its owner on its cgroup (`JobOwnerRecord`), and a job
    /// whose recorded owner no longer exists is killed and removed, as its
    /// watchdog would have. Jobs without a record (detached, or made where
    /// cgroupfs keeps no attributes) are left alone. The parent goes too
    /// when it removes itself and is left empty. Returns the names of the
    /// jobs ended.
    ///
    /// `JobObject.create` calls this once per parent in each process, so the
    /// next user of a parent ends what an earlier one left; `jobsup reclaim`
    /// calls it on demand.
    @discardableResult
    public func reclaimAbandonedJobs() -> [String] {
        guard case .success(let names) = Syscall.listDirectory(cgroupPath, directoriesOnly: true) else { return [] }
        var reclaimed: [String] = []
        for name in names.sorted() {
            // The record is read through the descriptor that then kills: a
            // job made anew under the same name in between is not touched.
            guard let job = try? CgroupDirectory(opening: CgroupPath.join(cgroupPath, name)),
                JobOwnerRecord.isAbandoned(JobOwnerRecord.read(job.fd))
            else { continue }
            if AbandonedJob.killAndRemove(job) { reclaimed.append(name) }
        }
        if !reclaimed.isEmpty { removeIfUnused() }
        return reclaimed
    }

    /// The parents this process has reclaimed in (a list: few per process).
    private static let reclaimed = Mutex<[String]>([])

    /// `reclaimAbandonedJobs`, the first time this process makes a job here,
    /// unless this process made the parent itself (then it held no job
    /// before: the default parent, made on demand, as a rule).
    func reclaimAbandonedJobsOnce() {
        let first = Self.reclaimed.withLock { parents in
            if parents.contains(cgroupPath) { return false }
            parents.append(cgroupPath)
            return true
        }
        if first && !CgroupSetUp.isMadeParent(cgroupPath) { reclaimAbandonedJobs() }
    }
}

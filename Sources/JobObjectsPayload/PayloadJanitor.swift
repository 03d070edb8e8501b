import CJobShim
import CJobShimPayload
import JobObjects
import Glibc
import Synchronization
import SystemPackage

/// The Swift side of the payload janitor (see `jobshim_janitor_start` in
/// mounts.c): one small forked process per running payload that releases
/// its storage and identity if the owner dies — even by SIGKILL — before
/// it could: it kills the job, waits on cgroup.events until it is empty,
/// unmounts the host-visible mounts last first, removes the mount points
/// and the record, and drops the ephemeral uid's lock it inherited. When
/// the owner finishes the job itself it dismisses the janitor.
///
/// In private mode the kernel already unmounts everything with the job's
/// last process; the janitor only removes the empty mount points and the
/// record there, and holds the uid until the job is empty.
final class PayloadJanitor: Sendable {
    let pid: pid_t
    let startTime: UInt64
    private let pidfd: CInt
    private let socket: CInt
    private let dismissed = Atomic<Bool>(false)

    private init(pid: pid_t, pidfd: CInt, socket: CInt) {
        self.pid = pid
        self.pidfd = pidfd
        self.socket = socket
        startTime = ProcessIdentity.startTime(of: pid) ?? 0
    }

    var identity: ProcessIdentity { ProcessIdentity(pid: pid, startTime: startTime) }

    /// Forks the janitor for the job at `cgroupPath`.
    static func start(cgroupPath: String, unmount: [String], remove: [String], keepFD: CInt?) throws(JobObjectError) -> PayloadJanitor {
        let cgroupFD = try Syscall.open(cgroupPath, O_RDONLY | O_DIRECTORY)
            .orThrow("start payload janitor", path: cgroupPath, what: "open the job's cgroup")
        defer { Syscall.close(cgroupFD) }
        let unmountStrings = unmount.map { strdup($0)! }
        let removeStrings = remove.map { strdup($0)! }
        defer { for string in unmountStrings + removeStrings { free(string) } }
        var pid: pid_t = 0
        var pidfd: CInt = -1
        var socket: CInt = -1
        let rc: CInt = unmountStrings.map { UnsafePointer($0) as UnsafePointer<CChar>? }.withUnsafeBufferPointer { unmountPointer in
            removeStrings.map { UnsafePointer($0) as UnsafePointer<CChar>? }.withUnsafeBufferPointer { removePointer in
                var config = jobshim_janitor_config(
                    cgroup_fd: cgroupFD,
                    unmount: unmountPointer.baseAddress, unmount_count: CInt(unmount.count),
                    remove: removePointer.baseAddress, remove_count: CInt(remove.count),
                    keep_fd: keepFD ?? -1)
                return ProcessRegistry.shared.startChild(&pid) { jobshim_janitor_start(&config, &$0, &pidfd, &socket) }
            }
        }
        guard rc == 0 else {
            throw JobObjectError(
                .systemCallFailed, "cannot start the payload janitor", operation: "start payload janitor",
                errno: Errno(rawValue: Glibc.errno))
        }
        return PayloadJanitor(pid: pid, pidfd: pidfd, socket: socket)
    }

    /// Tells the janitor the owner has released everything itself, and
    /// reaps it (it exits at once).
    func dismiss() -> PayloadCleanupStep {
        guard !dismissed.exchange(true, ordering: .acquiringAndReleasing) else {
            return PayloadCleanupStep(.stopJanitor, "process \(pid)", detail: "already stopped")
        }
        var error: JobObjectError?
        if case .failure(let errno) = Syscall.send(socket, Array("D".utf8)) {
            // It is gone already (killed by someone): reap it all the same.
            error = .system(errno, operation: "stop payload janitor", what: "reach the janitor (process \(pid))")
        }
        Syscall.close(socket)
        _ = Syscall.waitPidfd(pidfd, options: 0)
        ProcessRegistry.shared.remove(pid)
        Syscall.close(pidfd)
        return PayloadCleanupStep(.stopJanitor, "process \(pid)", error: error)
    }

    deinit {
        if !dismissed.load(ordering: .acquiring) { _ = dismiss() }
    }
}

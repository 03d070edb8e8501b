import CJobShim
import Glibc
import SystemPackage

// One wrapper per system call, and nothing else in the library calls libc
// for these directly. Each decides explicitly whether EINTR is retried.

/// Runs `body` until it does not fail with EINTR (when `retryOnInterrupt`),
/// turning `-1` into a thrown `Errno`.
@inline(__always)
package func valueOrErrno<T: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ body: () -> T) -> Result<T, Errno> {
    while true {
        let value = body()
        if value != -1 { return .success(value) }
        let error = Errno(rawValue: Glibc.errno)
        if retryOnInterrupt && error == .interrupted { continue }
        return .failure(error)
    }
}

package enum Syscall {
    package static func open(_ path: String, _ flags: CInt, mode: mode_t = 0) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    package static func openat(_ dirfd: CInt, _ name: String, _ flags: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.openat(dirfd, name, flags | O_CLOEXEC) }
    }

    /// Never retried: after EINTR the descriptor is already gone on Linux.
    package static func close(_ fd: CInt) {
        _ = Glibc.close(fd)
    }

    package static func mkdir(_ path: String, _ mode: mode_t) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.mkdir(path, mode) }
    }

    package static func rmdir(_ path: String) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.rmdir(path) }
    }

    /// Sets the extended attribute `name` of `path` to `value`.
    package static func setAttribute(_ path: String, _ name: String, _ value: String) -> Result<CInt, Errno> {
        valueOrErrno { setxattr(path, name, value, value.utf8.count, 0) }
    }

    /// The extended attribute `name` of `path`, if it is set (up to 256 bytes).
    package static func attribute(_ path: String, _ name: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = getxattr(path, name, &buffer, buffer.count)
        return count >= 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    package static func access(_ path: String, _ mode: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.access(path, mode) }
    }

    package static func pread(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer, offset: off_t) -> Result<Int, Errno> {
        valueOrErrno { Glibc.pread(fd, buffer.baseAddress, buffer.count, offset) }
    }

    package static func write(_ fd: CInt, _ buffer: UnsafeRawBufferPointer) -> Result<Int, Errno> {
        valueOrErrno { Glibc.write(fd, buffer.baseAddress, buffer.count) }
    }

    package static func pipe() -> Result<(read: CInt, write: CInt), Errno> {
        var fds: [CInt] = [-1, -1]
        return valueOrErrno { jobshim_pipe2(&fds, O_CLOEXEC) }.map { _ in (fds[0], fds[1]) }
    }

    package static func pidfdOpen(_ pid: pid_t) -> Result<CInt, Errno> {
        valueOrErrno { jobshim_pidfd_open(pid, 0) }
    }

    package static func pidfdSendSignal(_ pidfd: CInt, _ signal: CInt) -> Result<CInt, Errno> {
        valueOrErrno { jobshim_pidfd_send_signal(pidfd, signal) }
    }

    /// waitid(P_PIDFD, pidfd, WEXITED | extra); nil when the process has not exited (WNOHANG).
    package static func waitPidfd(_ pidfd: CInt, options: CInt) -> Result<siginfo_t?, Errno> {
        var info = siginfo_t()
        return valueOrErrno { jobshim_waitid_pidfd(pidfd, &info, WEXITED | options) }
            .map { _ in jobshim_siginfo_pid(&info) == 0 ? nil : info }
    }

    /// The signal that stopped the child behind `pidfd`, if it stopped since
    /// the last call (waitid WSTOPPED | WNOHANG, which consumes the report).
    package static func stopSignal(pidfd: CInt) -> Int32? {
        var info = siginfo_t()
        guard jobshim_waitid_pidfd(pidfd, &info, WSTOPPED | WNOHANG) == 0, jobshim_siginfo_pid(&info) != 0,
            jobshim_siginfo_code(&info) == CLD_STOPPED
        else { return nil }
        return jobshim_siginfo_status(&info)
    }

    /// waitid(P_PID, pid, WEXITED | extra); nil when the process has not exited (WNOHANG).
    package static func waitPid(_ pid: pid_t, options: CInt) -> Result<siginfo_t?, Errno> {
        var info = siginfo_t()
        return valueOrErrno { jobshim_waitid_pid(pid, &info, WEXITED | options) }
            .map { _ in jobshim_siginfo_pid(&info) == 0 ? nil : info }
    }

    package static func setChildSubreaper(_ on: Bool) -> Result<CInt, Errno> {
        valueOrErrno { jobshim_set_child_subreaper(on ? 1 : 0) }
    }

    package static func epollCreate() -> Result<CInt, Errno> {
        valueOrErrno { CJobShim.epoll_create1(CInt(EPOLL_CLOEXEC)) }
    }

    package static func eventfd() -> Result<CInt, Errno> {
        valueOrErrno { CJobShim.eventfd(0, CInt(EFD_CLOEXEC | EFD_NONBLOCK)) }
    }

    package static func send(_ fd: CInt, _ bytes: [UInt8], waiting: Bool = true) -> Result<Int, Errno> {
        let flags = CInt(MSG_NOSIGNAL) | (waiting ? 0 : CInt(MSG_DONTWAIT))
        return bytes.withUnsafeBytes { buffer in
            valueOrErrno { Glibc.send(fd, buffer.baseAddress, buffer.count, flags) }
        }
    }

    package static func kill(_ pid: pid_t, _ signal: CInt) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.kill(pid, signal) }
    }
}

extension Result where Failure == Errno {
    /// Unwraps, turning an errno into a `JobObjectError` with context.
    /// The message's parts are built only on failure.
    package func orThrow(
        _ operation: @autoclosure () -> String, path: @autoclosure () -> String? = nil,
        what: @autoclosure () -> String
    ) throws(JobObjectError) -> Success {
        switch self {
        case .success(let value): return value
        case .failure(let errno): throw JobObjectError.system(errno, operation: operation(), path: path(), what: what())
        }
    }
}

extension Syscall {
    /// The names in a directory (no "." or ".."), via opendir/readdir;
    /// with `directoriesOnly`, of its subdirectories (a cgroup's children).
    package static func listDirectory(_ path: String, directoriesOnly: Bool = false) -> Result<[String], Errno> {
        guard let dir = opendir(path) else { return .failure(Errno(rawValue: Glibc.errno)) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            if directoriesOnly && entry.pointee.d_type != UInt8(DT_DIR) { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return .success(names)
    }
}

import CJobShim
import CJobShimPayload
import JobObjects
import Glibc
import SystemPackage

// The system calls of payload storage and identity, one wrapper each, in
// the library's `Syscall` namespace (see System/Syscalls.swift for the
// rules: EINTR decided per call, never retry close).
extension Syscall {
    /// mount(2) and, for a read-only bind, mount_setattr(2) (see
    /// `jobshim_apply_mount`). The error says which of the two failed.
    static func mount(_ mount: SpawnOptions.BindMount) -> Result<Void, MountFailure> {
        var keep: UInt = 0
        if mount.readOnly, jobshim_mount_flags_of(mount.source.string, &keep) != 0 {
            return .failure(MountFailure(readOnlyStep: false, errno: Errno(rawValue: Glibc.errno)))
        }
        return mount.source.withPlatformString { source in
            mount.target.withPlatformString { target in
                var entry = jobshim_mount(
                    source: source, target: target, fstype: nil,
                    flags: jobshim_ms_bind() | (mount.recursive ? jobshim_ms_rec() : 0),
                    data: nil, read_only: mount.readOnly ? 1 : 0, keep_flags: keep)
                var step: CInt = 0
                guard jobshim_apply_mount(&entry, &step) == 0 else {
                    return .failure(MountFailure(readOnlyStep: step == 2, errno: Errno(rawValue: Glibc.errno)))
                }
                return .success(())
            }
        }
    }

    struct MountFailure: Error {
        var readOnlyStep: Bool
        var errno: Errno
    }

    /// umount2(2). Not retried on EINTR (it does not return it).
    static func umount(_ target: String, detach: Bool) -> Result<CInt, Errno> {
        valueOrErrno(retryOnInterrupt: false) { jobshim_umount(target, detach ? CInt(MNT_DETACH) : 0) }
    }

    static func unlink(_ path: String) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.unlink(path) }
    }

    static func rename(_ from: String, _ to: String) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.rename(from, to) }
    }

    /// flock(fd, LOCK_EX | LOCK_NB); `.wouldBlock` while another holds it.
    static func lockExclusiveNonBlocking(_ fd: CInt) -> Result<CInt, Errno> {
        valueOrErrno { jobshim_lock_exclusive_nonblocking(fd) }
    }

    /// stat(2).
    static func fileStatus(_ path: String) -> Result<stat, Errno> {
        var info = stat()
        return valueOrErrno { stat(path, &info) }.map { _ in info }
    }

    /// fstat(2).
    static func fileStatus(fd: CInt) -> Result<stat, Errno> {
        var info = stat()
        return valueOrErrno { fstat(fd, &info) }.map { _ in info }
    }

    static func ftruncate(_ fd: CInt, _ length: off_t) -> Result<CInt, Errno> {
        valueOrErrno { Glibc.ftruncate(fd, length) }
    }

    /// readlink(2) of a short link (/proc/PID/ns/mnt).
    static func readlink(_ path: String) -> Result<String, Errno> {
        var buffer = [CChar](repeating: 0, count: 256)
        return valueOrErrno { Glibc.readlink(path, &buffer, buffer.count - 1) }
            .map { String(decoding: buffer.prefix($0).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    }
}

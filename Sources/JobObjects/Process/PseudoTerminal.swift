import Glibc
import SystemPackage

/// A pseudo-terminal pair from `/dev/ptmx`: the controller end, which a
/// terminal emulator (or a container engine) reads and writes, and the
/// terminal end a child gets as its standard descriptors, with
/// `ProcessGroup.newSessionWithTerminal` to make it the child's controlling
/// terminal. Both are close-on-exec; the caller owns and closes them.
///
/// ```swift
/// let pty = try PseudoTerminal.open()
/// var options = SpawnOptions("/bin/sh")
/// options.processGroup = .newSessionWithTerminal
/// options.standardInput = .fileDescriptor(pty.terminal)
/// options.standardOutput = .fileDescriptor(pty.terminal)
/// options.standardError = .fileDescriptor(pty.terminal)
/// let shell = try job.spawn(options)
/// try pty.terminal.close()  // the child holds its own copies
/// ```
public struct PseudoTerminal: Sendable {
    /// The controller ("master") end.
    public let controller: FileDescriptor
    /// The terminal ("slave") end, opened without becoming this process's
    /// controlling terminal.
    public let terminal: FileDescriptor
    /// The terminal end's path, `/dev/pts/N`.
    public let path: FilePath

    /// `ioctl` requests from <asm-generic/ioctls.h>, which Swift does not
    /// import (they are function-like macros).
    private static let unlock: UInt = 0x4004_5431  // TIOCSPTLCK
    private static let number: UInt = 0x8004_5430  // TIOCGPTN

    /// Opens a new pair.
    public static func open() throws(JobObjectError) -> PseudoTerminal {
        func failure(_ message: String, _ path: String) -> JobObjectError {
            JobObjectError(.systemCallFailed, message, operation: "open pseudo-terminal", path: path, errno: Errno(rawValue: errno))
        }
        let controller = Glibc.open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard controller >= 0 else { throw failure("cannot open /dev/ptmx (is devpts mounted at /dev/pts?)", "/dev/ptmx") }
        var unlocked: CInt = 0
        var index: CUnsignedInt = 0
        guard ioctl(controller, unlock, &unlocked) == 0, ioctl(controller, number, &index) == 0 else {
            let error = failure("cannot unlock the new pseudo-terminal", "/dev/ptmx")
            close(controller)
            throw error
        }
        let path = "/dev/pts/\(index)"
        let terminal = Glibc.open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard terminal >= 0 else {
            let error = failure("cannot open the new pseudo-terminal's terminal end", path)
            close(controller)
            throw error
        }
        return PseudoTerminal(
            controller: FileDescriptor(rawValue: controller), terminal: FileDescriptor(rawValue: terminal), path: FilePath(path))
    }
}

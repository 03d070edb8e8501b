import Glibc
import SystemPackage

/// Reading and writing the small text files of /proc and cgroupfs.
///
/// These files are generated on read, so each read starts at offset 0 and
/// takes what one pass returns; writes are one `write` each, as the kernel
/// parses them per call.
package enum FileContents {
    /// Reads a whole small file by path.
    package static func read(_ path: String) -> Result<String, Errno> {
        Syscall.open(path, O_RDONLY).flatMap { fd in
            defer { Syscall.close(fd) }
            return read(fd: fd)
        }
    }

    /// Reads `name` inside the directory `dirfd`.
    package static func read(at dirfd: CInt, _ name: String) -> Result<String, Errno> {
        Syscall.openat(dirfd, name, O_RDONLY).flatMap { fd in
            defer { Syscall.close(fd) }
            return read(fd: fd)
        }
    }

    /// Reads an open file from offset 0 to its end, straight into the
    /// String's storage (invalid UTF-8 repaired, as String(decoding:) does).
    /// These files fit in one page as a rule; a longer one is read again
    /// from the start into four times the room, until it fits.
    package static func read(fd: CInt) -> Result<String, Errno> {
        var capacity = 4096
        while true {
            var failure: Errno?
            var reachedEnd = false
            let text = String(unsafeUninitializedCapacity: capacity) { buffer in
                var filled = 0
                while filled < buffer.count {
                    switch Syscall.pread(
                        fd, UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[filled...])), offset: off_t(filled))
                    {
                    case .failure(let errno):
                        failure = errno
                        return 0
                    case .success(0):
                        reachedEnd = true
                        return filled
                    case .success(let n):
                        filled += n
                    }
                }
                return filled
            }
            if let failure { return .failure(failure) }
            if reachedEnd { return .success(text) }
            capacity *= 4
        }
    }

    /// Writes `value` to `name` inside `dirfd` in one `write`.
    package static func write(at dirfd: CInt, _ name: String, _ value: String) -> Result<Void, Errno> {
        Syscall.openat(dirfd, name, O_WRONLY).flatMap { fd in
            defer { Syscall.close(fd) }
            return write(fd: fd, value)
        }
    }

    package static func write(fd: CInt, _ value: String) -> Result<Void, Errno> {
        var value = value
        return value.withUTF8 { Syscall.write(fd, UnsafeRawBufferPointer($0)) }.map { _ in () }
    }
}

extension String {
    /// The lines of a /proc or cgroupfs file, without empty ones.
    package var nonEmptyLines: [Substring] {
        split(separator: "\n", omittingEmptySubsequences: true)
    }

    /// The value of `key` in "key value" lines, without building a table
    /// (for the files read on every wait, such as cgroup.events).
    package func value(ofKey key: String) -> Substring? {
        for line in nonEmptyLines {
            guard line.hasPrefix(key) else { continue }
            let rest = line.dropFirst(key.count)
            if rest.first == " " { return rest.dropFirst() }
        }
        return nil
    }

    /// Parses "key value" lines (cgroup.events, cpu.stat, memory.events …).
    package var keyedValues: [Substring: Substring] {
        var values: [Substring: Substring] = [:]
        for line in nonEmptyLines {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        return values
    }
}

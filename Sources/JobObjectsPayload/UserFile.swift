import Glibc
import JobObjects
import SystemPackage

/// A file a user names — a payload spec, a seccomp profile — read whole:
/// a regular file of at most `limit` bytes of UTF-8 text. Anything else is
/// refused with a sentence that says what the path is and what to give
/// instead: a FIFO or a terminal would block the read, a device like
/// /dev/zero never ends, and bytes that are not UTF-8 would be repaired
/// into other text unnoticed.
enum UserFile {
    /// `what` names the file in messages ("payload spec").
    static func read(_ path: String, what: String, limit: Int) -> Result<String, UserFileError> {
        // Non-blocking, so that opening a FIFO without a writer returns.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        var status = stat()
        guard fd >= 0 else {
            let failure = Errno(rawValue: errno)
            // A socket cannot be opened (ENXIO): say what it is.
            if stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFREG { return .failure(notRegular(path, what, status)) }
            return .failure(UserFileError("cannot read the \(what) \(path): \(failure)"))
        }
        defer { close(fd) }
        guard fstat(fd, &status) == 0 else {
            return .failure(UserFileError("cannot read the \(what) \(path): \(Errno(rawValue: errno))"))
        }
        guard status.st_mode & S_IFMT == S_IFREG else { return .failure(notRegular(path, what, status)) }
        let tooLarge = UserFileError("the \(what) \(path) is larger than \(limit) bytes, the most a \(what) may be")
        guard status.st_size <= limit else { return .failure(tooLarge) }
        // One byte past the size it has now: reading it means the file grew.
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size) + 1)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + filled, $0.count - filled, off_t(filled)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return .failure(UserFileError("cannot read the \(what) \(path): \(Errno(rawValue: errno))")) }
            if n == 0 { break }
            filled += n
        }
        guard filled < bytes.count else {
            return .failure(UserFileError("the \(what) \(path) changed while it was read: read it again once it is written"))
        }
        bytes.removeSubrange(filled...)
        return text(bytes, what: "the \(what) \(path)")
    }

    /// Standard input read to its end (a pipe, a file, a terminal), as
    /// text of at most `limit` bytes: runc's `-` for a file.
    static func readStandardInput(what: String, limit: Int) -> Result<String, UserFileError> {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = Glibc.read(0, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return .failure(UserFileError("cannot read the \(what) from standard input: \(Errno(rawValue: errno))")) }
            if n == 0 { break }
            bytes += chunk[..<n]
            guard bytes.count <= limit else {
                return .failure(UserFileError("the \(what) on standard input is larger than \(limit) bytes, the most a \(what) may be"))
            }
        }
        return text(bytes, what: "the \(what) on standard input")
    }

    /// `bytes` as a String, refused unless they are UTF-8; `subject` names
    /// where they came from.
    private static func text(_ bytes: [UInt8], what subject: String) -> Result<String, UserFileError> {
        if let offset = firstInvalidUTF8(bytes) {
            let line = bytes[..<offset].count { $0 == UInt8(ascii: "\n") } + 1
            let byte = "0x" + String(bytes[offset], radix: 16)
            return .failure(UserFileError("\(subject) is not UTF-8 text: line \(line) has a byte (\(byte)) that is not; save it as UTF-8"))
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    /// The offset of the first byte that does not begin a valid UTF-8
    /// sequence, or nil when every byte is part of one.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    private static func notRegular(_ path: String, _ what: String, _ status: stat) -> UserFileError {
        UserFileError("the \(what) \(path) is \(kind(of: status.st_mode)), not a regular file: give the path of a YAML or JSON file")
    }

    private static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a file"
        }
    }
}

/// Why a user's file was refused; `message` names the file and the fix.
struct UserFileError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

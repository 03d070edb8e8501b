import Foundation
import Glibc
@testable import JobObjects
@testable import JobObjectsPayload
import Testing

/// Specs and seccomp profiles are files a user names: anything but a
/// regular file of UTF-8 text within the size limit is a clear error, and
/// none of them hangs or grows a buffer without end.
@Suite("user files: specs and profiles")
struct UserFileTests {
    /// Each loader, with what its messages call the file.
    static let loaders: [(what: String, load: @Sendable (String) throws -> Void)] = [
        ("payload spec", { _ = try PayloadSpec.load(path: .init($0)) }),
        ("seccomp profile", { _ = try SeccompProfile.load(path: .init($0)) }),
    ]

    @Test(arguments: [0, 1])
    func filesThatAreNotRegularAreRefusedWithoutReading(_ loader: Int) throws {
        let (what, load) = Self.loaders[loader]
        let directory = try TemporaryDirectory()
        let fifo = directory.path + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let socketPath = directory.path + "/socket"
        let listener = try UnixListener(path: socketPath)
        defer { withExtendedLifetime(listener) {} }
        let cases = [
            ("/dev/zero", "a character device"), (fifo, "a FIFO"), (directory.path, "a directory"), (socketPath, "a socket"),
        ]
        for (path, kind) in cases {
            let message = Self.message(load, path)
            #expect(message.contains("the \(what) \(path) is \(kind), not a regular file"), "\(message)")
        }
        #expect(Self.message(load, directory.path + "/missing").contains("cannot read the \(what)"))
    }

    /// Sizes around the limit, drawn from a seed; the file is sparse, so a
    /// reader that reads before it checks would still take a while.
    @Test(arguments: [0, 1])
    func filesOverTheLimitAreRefusedBeforeReading(_ loader: Int) throws {
        let (what, load) = Self.loaders[loader]
        let limit = loader == 0 ? PayloadSpec.maximumFileSize : SeccompProfile.maximumFileSize
        let directory = try TemporaryDirectory()
        var random = SeededGenerator(seed: UInt64(loader))
        for size in [limit + 1, limit * 64, Int.random(in: limit + 2...limit * 1024, using: &random)] {
            let path = directory.path + "/big"
            let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0o600)
            #expect(ftruncate(fd, off_t(size)) == 0)
            close(fd)
            let message = Self.message(load, path)
            #expect(message.contains("is larger than \(limit) bytes, the most a \(what) may be"), "\(size): \(message)")
        }
    }

    /// A byte that is not UTF-8, put at a seeded place in a valid file, is
    /// refused with its line rather than repaired into other text.
    @Test(arguments: [0, 1])
    func invalidUTF8IsRefusedWithItsLine(_ loader: Int) throws {
        let (what, load) = Self.loaders[loader]
        let directory = try TemporaryDirectory()
        let valid = loader == 0 ? "name: n\npayload: /tmp\ncommand: [\"/bin/true\"]\n" : "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}\n"
        var random = SeededGenerator(seed: 7 + UInt64(loader))
        for _ in 0..<50 {
            var bytes = Array(valid.utf8)
            let offset = Int.random(in: 0...bytes.count, using: &random)
            let bad = [0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xff, 0xed][Int.random(in: 0..<7, using: &random)]
            bytes.insert(UInt8(bad), at: offset)
            let path = directory.path + "/bad"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let line = bytes[..<offset].count { $0 == UInt8(ascii: "\n") } + 1
            let message = Self.message(load, path)
            #expect(message.contains("the \(what) \(path) is not UTF-8 text: line \(line)"), "offset \(offset): \(message)")
        }
    }

    /// jobsup refuses the same files with exit 2, at once.
    @Test func jobsupRefusesASpecThatIsADevice() async throws {
        try await withJobObject(name: uniqueJobName()) { job async throws in
            let result = try await Jobsup.run(["run", "-f", "/dev/zero"], in: job)
            #expect(result.status == .exited(code: 2))
            #expect(result.err.contains("the payload spec /dev/zero is a character device, not a regular file"), "\(result.err)")
        }
    }

    /// The first problem `load` throws with, as text.
    private static func message(_ load: (String) throws -> Void, _ path: String) -> String {
        do {
            try load(path)
            return "loaded"
        } catch {
            return "\(error)"
        }
    }
}

/// A listening Unix socket at `path`, closed when released.
final class UnixListener {
    let fd: CInt

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    deinit { close(fd) }
}

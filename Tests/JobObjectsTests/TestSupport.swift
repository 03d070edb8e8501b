import Foundation
import Glibc
@testable import JobObjects
import SystemPackage
import Testing

/// Which tier runs the tests: the host (hybrid cgroup2 without controllers)
/// or the VM (pure cgroup2 with every controller), where a missing
/// requirement is a failure instead of a skip.
enum Tier {
    static let isVM = ProcessInfo.processInfo.environment["JOBOBJECTS_TEST_TIER"] == "vm"

    /// For `.enabled(if:)`: true when the controllers are there, and always
    /// in the VM tier so that a missing controller fails there.
    static func has(_ controllers: String...) -> Bool {
        if isVM { return true }
        guard let parent = try? JobParent.resolve() else { return false }
        return Set(controllers).isSubset(of: parent.availableControllers())
    }
}

/// A job name unique to one test, so parallel tests never collide.
func uniqueJobName(_ label: String = #function) -> String {
    let clean = label.prefix { $0 != "(" }.filter { $0.isLetter || $0.isNumber }
    return "t-\(clean.prefix(40))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// Whether the process has exited. Asked of its pidfd (readable once the
/// process has exited), never of its pid, which the kernel may already
/// have handed to another process.
func isGone(_ process: ProcessHandle) -> Bool {
    var entry = pollfd(fd: process.pidfd, events: Int16(POLLIN), revents: 0)
    return poll(&entry, 1, 0) == 1
}

/// Holds `pid` by a pidfd while it is known to be alive.
func watch(_ pid: pid_t) throws -> ProcessHandle {
    try ProcessHandle(observing: pid)
}

/// Checks that the job's cgroup and every listed process are gone.
func expectNothingLeft(path: String, processes: [ProcessHandle] = [], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(access(path, F_OK) != 0, "cgroup \(path) was left behind", sourceLocation: sourceLocation)
    for process in processes {
        #expect(isGone(process), "process \(process.pid) was left behind", sourceLocation: sourceLocation)
    }
}

/// Waits for a condition the kernel offers no notification for (a
/// directory removed by another process), checking every 10 ms until
/// `limit`. Returns whether it held. Not a timing assertion: `limit` is a
/// generous bound for a hung test, not a goal — five minutes, because the
/// VM tier runs every test at once under emulation, where starting a
/// process has taken over a minute.
func eventually(within limit: Duration = .seconds(300), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Blocking reads run on their own thread, never on the cooperative pool.
enum PipeReader {
    /// Reads until EOF.
    static func readAll(_ fd: FileDescriptor) async -> String {
        await onThread {
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd.rawValue, $0.baseAddress, 4096) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                data += buffer[0..<n]
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Reads until a line equal to `marker` (or EOF) and returns what came before.
    static func readUntil(_ marker: String, from fd: FileDescriptor) async -> [String] {
        await onThread {
            var lines: [String] = []
            var current = [UInt8]()
            var byte: UInt8 = 0
            while read(fd.rawValue, &byte, 1) == 1 {
                if byte == UInt8(ascii: "\n") {
                    let line = String(decoding: current, as: UTF8.self)
                    if line == marker { return lines }
                    lines.append(line)
                    current = []
                } else {
                    current.append(byte)
                }
            }
            return lines
        }
    }

    private static func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }
}

/// The jobsup binary built next to this test bundle.
var jobsupPath: String {
    builtExecutable("jobsup") ?? ProcessInfo.processInfo.environment["JOBSUP"] ?? "jobsup"
}

/// An executable of this package (jobsup, the examples) built next to this
/// test bundle.
func builtExecutable(_ name: String) -> String? {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let bundle = URL(fileURLWithPath: executable).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// Spawns `argv` in `job` with stdout (and optionally stderr) piped, and
/// without JOBOBJECTS_CGROUP_PARENT: a jobsup or example it starts makes its
/// jobs inside `job`, the only place a member can put processes where
/// cgroup2 has nsdelegate (the VM tier), and where the test's cleanup
/// covers them.
func spawnPiped(
    _ job: JobObject, _ argv: [String], stderr: Bool = false,
    configure: (inout SpawnOptions) -> Void = { _ in }
) throws -> ProcessHandle {
    var options = SpawnOptions(argv[0], arguments: Array(argv.dropFirst()))
    options.environment = .inheritUpdating([JobParent.environmentVariable: nil])
    options.standardOutput = .pipe
    if stderr { options.standardError = .pipe }
    configure(&options)
    return try job.spawn(options)
}

/// The running kernel's major and minor version, from uname(2)'s release
/// ("6.18.44-…" is (6, 18)).
func kernelVersion() throws -> (Int, Int) {
    var names = utsname()
    #expect(uname(&names) == 0)
    let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
    return try (#require(numbers.first), #require(numbers.dropFirst().first))
}

/// A reproducible source of random inputs for generated tests (SplitMix64):
/// a failure names its seed, and the same seed makes the same inputs.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A scratch directory under /tmp, removed with what is in it when released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/jobobjects-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A copy of an executable that any user can run, for tests that run it as
/// another user: the checkout may sit in a directory only root can enter
/// (/root is mode 0700). Removed with its directory when released.
///
/// `install` writes the copy in a process of its own, inside `job`: written
/// by this process, the copy's open descriptor could be inherited by a child
/// another test forks at that moment, and executing the copy would fail
/// with ETXTBSY while that child holds it.
final class ExecutableCopy {
    private let directory: TemporaryDirectory
    let path: String

    init(of executable: String, in job: JobObject) async throws {
        directory = try TemporaryDirectory()
        path = directory.path + "/" + URL(fileURLWithPath: executable).lastPathComponent
        var options = SpawnOptions("install", arguments: ["-m", "755", executable, path])
        options.standardInput = .null
        let result = try await job.run(options)
        guard result.status == .exited(code: 0), chmod(directory.path, 0o755) == 0 else {
            throw POSIXError(.EIO)
        }
    }
}

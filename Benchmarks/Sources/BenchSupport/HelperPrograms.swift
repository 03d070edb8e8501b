import CBenchSupport
import Glibc

/// The C floors (`floor-*`) and payloads (`payload-*`) built by this package
/// (see `Floors/` and `Payloads/`).
///
/// They are found in `$JOBOBJECTS_BENCH_BIN`, else next to the running
/// executable, which is where `swift build` puts every product of the package.
public enum HelperPrograms {
    public static let posixSpawnFloor = "floor-posix-spawn"
    public static let clone3Floor = "floor-clone3"
    public static let cgroupKillFloor = "floor-cgroup-kill"
    public static let signalEcho = "payload-signal-echo"
    public static let exitStamp = "payload-exit-stamp"
    public static let memoryHog = "payload-memory-hog"

    public static var directory: String {
        if let dir = getenv("JOBOBJECTS_BENCH_BIN").map({ String(cString: $0) }), !dir.isEmpty { return dir }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)])
    }

    /// The full path of helper `name`, or an error that says how to build it.
    public static func path(_ name: String) throws(BenchError) -> String {
        let path = directory + "/" + name
        guard access(path, X_OK) == 0 else {
            throw BenchError(
                """
                \(path) is missing: build every product of the Benchmarks package first \
                (cd Benchmarks && swift build -c release --scratch-path .build-bench), \
                or point JOBOBJECTS_BENCH_BIN at the directory that holds \(name)
                """)
        }
        return path
    }

    /// Runs helper `name` with `arguments` and returns its standard output;
    /// throws when it exits non-zero (its stderr goes to ours).
    public static func run(_ name: String, _ arguments: [String]) throws(BenchError) -> String {
        let path = try path(name)
        var fds: [CInt] = [-1, -1]
        guard bench_pipe_cloexec(&fds) == 0 else { throw BenchError("pipe failed: errno \(errno)") }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let pid = argv.withUnsafeBufferPointer { bench_posix_spawn(path, $0.baseAddress, -1, fds[1], -1) }
        close(fds[1])
        guard pid > 0 else {
            close(fds[0])
            throw BenchError("cannot run \(path): errno \(errno)")
        }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 {
                output += chunk[0..<n]
                continue
            }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fds[0])
        let status = bench_waitpid(pid)
        guard status == 0 else {
            throw BenchError("\(name) \(arguments.joined(separator: " ")) failed with status \(status)")
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Runs a floor that prints one nanosecond count per line and returns them.
    public static func samples(_ name: String, _ arguments: [String]) throws(BenchError) -> [UInt64] {
        let values = try run(name, arguments).split(separator: "\n").compactMap { UInt64($0) }
        guard !values.isEmpty else { throw BenchError("\(name) printed no samples") }
        return values
    }
}

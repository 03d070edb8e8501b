import CBenchSupport
import Foundation
import Glibc
import JobObjects
import Subprocess
import SystemPackage

/// One spawn of a program and the wait for its exit, by each of the ways a
/// Swift program can do it. Each returns the nanoseconds it took and throws
/// if the program did not exit 0.
public enum SpawnWait {
    /// `job.spawn` + `ProcessHandle.wait()`: the library under test.
    public static func jobObjects(_ job: JobObject, _ options: SpawnOptions) async throws -> UInt64 {
        let start = MonotonicClock.now()
        let process = try job.spawn(options)
        let status = await process.wait()
        let elapsed = MonotonicClock.now() - start
        guard !status.isAbnormal else { throw BenchError("\(options.executable) \(status)") }
        return elapsed
    }

    /// Foundation's `Process`: `run()` + `waitUntilExit()`.
    public static func foundation(_ executable: String) throws -> UInt64 {
        let start = MonotonicClock.now()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        try process.run()
        process.waitUntilExit()
        let elapsed = MonotonicClock.now() - start
        guard process.terminationStatus == 0 else { throw BenchError("\(executable) exited \(process.terminationStatus)") }
        return elapsed
    }

    /// swift-subprocess: `run(.path(...), output: .discarded)`.
    public static func subprocess(_ executable: String) async throws -> UInt64 {
        let start = MonotonicClock.now()
        let result = try await Subprocess.run(.path(FilePath(executable)), output: .discarded)
        let elapsed = MonotonicClock.now() - start
        guard result.terminationStatus.isSuccess else { throw BenchError("\(executable) \(result.terminationStatus)") }
        return elapsed
    }

    /// posix_spawn + waitpid called from this (Swift) process: the in-process
    /// counterpart of the C floor, outside any job.
    public static func posixSpawn(_ executable: String) throws -> UInt64 {
        let argv = [strdup(executable), nil]
        defer { free(argv[0]) }
        let start = MonotonicClock.now()
        let pid = argv.withUnsafeBufferPointer { bench_posix_spawn(executable, $0.baseAddress, -1, -1, -1) }
        guard pid > 0 else { throw BenchError("posix_spawn \(executable): errno \(errno)") }
        let status = bench_waitpid(pid)
        let elapsed = MonotonicClock.now() - start
        guard status == 0 else { throw BenchError("\(executable) exited \(status)") }
        return elapsed
    }
}

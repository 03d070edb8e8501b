import CBenchSupport
import Glibc
import JobObjects

/// From the moment a process exits to the moment its waiter knows.
///
/// The payload (`payload-exit-stamp`) reads one byte, writes CLOCK_MONOTONIC
/// and exits; the latency is the time `wait()` returns minus that stamp.
public enum ExitEventLatency {
    /// `ProcessHandle.wait()`: the library's monitor thread sees the pidfd
    /// in epoll, reaps, and resumes the waiting task.
    public static func jobObjects(_ job: JobObject) async throws -> UInt64 {
        var options = SpawnOptions(try HelperPrograms.path(HelperPrograms.exitStamp))
        options.standardInput = .pipe
        options.standardOutput = .pipe
        let process = try job.spawn(options)
        let input = process.standardInput!.rawValue
        let output = process.standardOutput!.rawValue
        defer {
            Glibc.close(input)
            Glibc.close(output)
        }
        try PipeIO.writeByte(input)
        let status = await process.wait()
        let end = MonotonicClock.now()
        guard !status.isAbnormal else { throw BenchError("exit-stamp \(status)") }
        return end &- stamp(try PipeIO.readExactly(output, 8))
    }

    /// The floor: the same payload (spawned outside any job), and this thread
    /// blocking in poll(pidfd) + waitid(P_PIDFD) itself.
    public static func rawPidfd() throws -> UInt64 {
        let path = try HelperPrograms.path(HelperPrograms.exitStamp)
        var input: [CInt] = [-1, -1]
        var output: [CInt] = [-1, -1]
        guard bench_pipe_cloexec(&input) == 0, bench_pipe_cloexec(&output) == 0 else { throw BenchError("pipe: errno \(errno)") }
        defer { for fd in input + output where fd >= 0 { _ = Glibc.close(fd) } }
        let argv = [strdup(path), nil]
        defer { free(argv[0]) }
        let pid = argv.withUnsafeBufferPointer { bench_posix_spawn(path, $0.baseAddress, input[0], output[1], -1) }
        guard pid > 0 else { throw BenchError("posix_spawn \(path): errno \(errno)") }
        let pidfd = bench_pidfd_open(pid)
        guard pidfd >= 0 else { throw BenchError("pidfd_open: errno \(errno)") }
        defer { Glibc.close(pidfd) }
        try PipeIO.writeByte(input[1])
        let status = bench_pidfd_wait(pidfd)
        let end = MonotonicClock.now()
        guard status == 0 else { throw BenchError("exit-stamp exited \(status)") }
        return end &- stamp(try PipeIO.readExactly(output[0], 8))
    }

    static func stamp(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }
}

/// The same exit, observed as `.processExited` on the job's event stream.
public final class ExitEventStream {
    public let job: JobObject
    private var events: AsyncStream<JobEvent>.AsyncIterator

    public init(job: JobObject) async {
        self.job = job
        events = job.events.makeAsyncIterator()
        _ = await events.next()  // .subscribed
    }

    public func next() async throws -> UInt64 {
        var options = SpawnOptions(try HelperPrograms.path(HelperPrograms.exitStamp))
        options.standardInput = .pipe
        options.standardOutput = .pipe
        let process = try job.spawn(options)
        let input = process.standardInput!.rawValue
        let output = process.standardOutput!.rawValue
        defer {
            Glibc.close(input)
            Glibc.close(output)
        }
        try PipeIO.writeByte(input)
        var end: UInt64 = 0
        while let event = await events.next() {
            if case .processExited(let exit) = event, exit.pid == process.pid {
                end = MonotonicClock.now()
                break
            }
        }
        guard end != 0 else { throw BenchError("the event stream ended before process \(process.pid) exited") }
        return end &- ExitEventLatency.stamp(try PipeIO.readExactly(output, 8))
    }
}

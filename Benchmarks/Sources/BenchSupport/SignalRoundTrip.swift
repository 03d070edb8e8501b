import Glibc
import JobObjects

/// A job member that answers each SIGUSR1 with one byte on a pipe
/// (`payload-signal-echo`): send → the handler's byte read back.
public final class SignalRoundTrip {
    public let job: JobObject
    public let member: ProcessHandle
    private let reply: CInt

    public init() async throws {
        job = try JobObject.create(name: Workloads.uniqueJobName("bench-signal"))
        var options = SpawnOptions(try HelperPrograms.path(HelperPrograms.signalEcho))
        options.standardOutput = .pipe
        do {
            member = try job.spawn(options)
            reply = member.standardOutput!.rawValue
            guard try PipeIO.readExactly(reply, 1) == [UInt8(ascii: "R")] else { throw BenchError("signal-echo did not start") }
        } catch {
            try? await job.close()
            throw error
        }
    }

    /// `ProcessHandle.signal` (pidfd_send_signal to one member).
    public func viaProcessHandle() throws -> UInt64 {
        let start = MonotonicClock.now()
        try member.signal(.user1)
        _ = try PipeIO.readExactly(reply, 1)
        return MonotonicClock.now() - start
    }

    /// `JobObject.signal` (every member of the job, each checked through a pidfd).
    public func viaJob() throws -> UInt64 {
        let start = MonotonicClock.now()
        guard try job.signal(.user1) == 1 else { throw BenchError("job.signal reached no member") }
        _ = try PipeIO.readExactly(reply, 1)
        return MonotonicClock.now() - start
    }

    /// kill(2) by pid: the floor.
    public func viaKill() throws -> UInt64 {
        let start = MonotonicClock.now()
        guard kill(member.pid, SIGUSR1) == 0 else { throw BenchError("kill: errno \(errno)") }
        _ = try PipeIO.readExactly(reply, 1)
        return MonotonicClock.now() - start
    }

    public func close() async throws {
        try await job.close()
        _ = await member.wait()
        Glibc.close(reply)
    }
}

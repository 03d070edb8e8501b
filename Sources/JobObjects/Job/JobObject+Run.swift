import Glibc

/// What `JobObject.run` collected: how the process ended and what it wrote.
public struct CollectedOutput: Sendable, Hashable {
    /// The process that ran.
    public let processID: pid_t
    /// How it ended.
    public let status: ExitStatus
    /// Everything it wrote to standard output.
    public let standardOutput: [UInt8]
    /// Everything it wrote to standard error.
    public let standardError: [UInt8]

    /// Standard output as UTF-8 text (invalid sequences replaced).
    public var standardOutputText: String { String(decoding: standardOutput, as: UTF8.self) }
    /// Standard error as UTF-8 text (invalid sequences replaced).
    public var standardErrorText: String { String(decoding: standardError, as: UTF8.self) }
}

extension JobObject {
    /// Runs a program in the job and collects what it writes: spawns
    /// `options` with standard output and error piped, reads both until EOF
    /// and returns once the process has exited.
    ///
    /// ```swift
    /// let result = try await job.run(SpawnOptions("uname", arguments: ["-r"]))
    /// print(result.status, result.standardOutputText)
    /// ```
    ///
    /// Standard input is `options.standardInput` (`.inherit` by default;
    /// `.null` for none). Each stream is collected up to `outputLimit`
    /// bytes: beyond that the process is killed and `.outputLimitExceeded`
    /// thrown. EOF comes when every writer has closed a pipe, so a
    /// descendant that keeps one open holds `run` until it exits (or the job
    /// is closed).
    public func run(_ options: SpawnOptions, outputLimit: Int = 1 << 20) async throws(JobObjectError) -> CollectedOutput {
        guard outputLimit >= 0 else {
            throw JobObjectError(.invalidArgument, "outputLimit must not be negative (got \(outputLimit))", operation: "run")
        }
        var options = options
        options.standardOutput = .pipe
        options.standardError = .pipe
        let process = try spawn(options)
        let output = process.standardOutput!
        let error = process.standardError!
        let collected: Result<([UInt8], [UInt8]), JobObjectError> = await withTaskGroup(of: (Int, Result<[UInt8], JobObjectError>).self) {
            group in
            group.addTask {
                (1, await Result { () async throws(JobObjectError) in try await PipeOutput.collect(from: output, limit: outputLimit) })
            }
            group.addTask {
                (2, await Result { () async throws(JobObjectError) in try await PipeOutput.collect(from: error, limit: outputLimit) })
            }
            var streams: [Int: [UInt8]] = [:]
            for await (stream, result) in group {
                switch result {
                case .success(let bytes): streams[stream] = bytes
                case .failure(let failure):
                    // Killed, so that the other pipe reaches EOF too.
                    try? process.signal(.kill)
                    group.cancelAll()
                    return .failure(failure)
                }
            }
            return .success((streams[1] ?? [], streams[2] ?? []))
        }
        let status = await process.wait()
        let (standardOutput, standardError) = try collected.get()
        return CollectedOutput(processID: process.pid, status: status, standardOutput: standardOutput, standardError: standardError)
    }
}

extension Result where Failure == JobObjectError {
    fileprivate init(catching body: () async throws(JobObjectError) -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

import CJobShim
import Glibc
import Synchronization
import SystemPackage

/// Reading what a process writes to a pipe (`SpawnOptions.StandardIO.pipe`)
/// without blocking a thread: the read end is made non-blocking and read
/// whenever the library's event loop reports it readable.
///
/// ```swift
/// var options = SpawnOptions("journalctl", arguments: ["-f"])
/// options.standardOutput = .pipe
/// let process = try job.spawn(options)
/// for try await chunk in PipeOutput.chunks(from: process.standardOutput!) {
///     print(String(decoding: chunk, as: UTF8.self), terminator: "")
/// }
/// ```
public enum PipeOutput {
    /// The bytes written to the pipe, chunk by chunk as they arrive, until
    /// every writer has closed it (EOF). The stream owns `fd` from here on
    /// and closes it when it ends or its consumer stops. Chunks the consumer
    /// has not taken yet are buffered: a consumer that falls behind a fast
    /// writer holds what it has not read in memory (`collect` stops at its
    /// limit).
    public static func chunks(from fd: FileDescriptor) -> AsyncThrowingStream<[UInt8], any Error> {
        AsyncThrowingStream { continuation in
            let reader = PipeReader(fd: fd.rawValue, continuation: continuation)
            continuation.onTermination = { _ in reader.stop() }
            reader.start()
        }
    }

    /// Everything written to the pipe until EOF; throws
    /// `.outputLimitExceeded` once more than `limit` bytes arrive (and then
    /// closes the pipe, so that further writes fail with EPIPE).
    public static func collect(from fd: FileDescriptor, limit: Int) async throws(JobObjectError) -> [UInt8] {
        var bytes: [UInt8] = []
        do {
            for try await chunk in chunks(from: fd) {
                bytes += chunk
                if bytes.count > limit {
                    throw JobObjectError(.outputLimitExceeded, "the process wrote more than \(limit) bytes", operation: "collect output")
                }
            }
        } catch let error as JobObjectError {
            throw error
        } catch {
            throw JobObjectError(.systemCallFailed, "\(error)", operation: "collect output")
        }
        return bytes
    }
}

/// One pipe's reader: an event-loop handler that drains the pipe into a stream.
private final class PipeReader: Sendable {
    private let fd: CInt
    private let continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation
    /// `registered` once `start` has added the descriptor to the event loop
    /// (token nil if that failed); `done` once EOF, an error or the consumer
    /// ended the stream. Whichever of `start` and `finish` comes second
    /// removes and closes the descriptor, so it is never closed while the
    /// loop may still add it.
    private let state = Mutex<(registered: Bool, token: UInt64?, done: Bool)>((false, nil, false))

    init(fd: CInt, continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation) {
        self.fd = fd
        self.continuation = continuation
    }

    func start() {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            return finish(JobObjectError.system(Errno(rawValue: Glibc.errno), operation: "read output", what: "make the pipe non-blocking"))
        }
        do {
            let token = try EventLoop.shared.add(fd: fd, events: UInt32(EPOLLIN.rawValue)) { [self] _ in drain() }
            let finishedMeanwhile = state.withLock { state -> Bool in
                state.registered = true
                state.token = token
                return state.done
            }
            if finishedMeanwhile { release(token) }
        } catch {
            state.withLock { $0.registered = true }
            finish(error)
        }
    }

    /// Reads one chunk. The loop is level-triggered, so it calls again
    /// while bytes remain; one read per call keeps a writer that never
    /// pauses from holding the loop's thread, which other handles share.
    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                continuation.yield(Array(buffer[0..<n]))
            } else if n == 0 {
                finish(nil)
            } else if Glibc.errno == EINTR {
                continue
            } else if Glibc.errno != EAGAIN {
                finish(JobObjectError.system(Errno(rawValue: Glibc.errno), operation: "read output", what: "read the pipe"))
            }
            return
        }
    }

    func stop() { finish(nil) }

    private func finish(_ error: (any Error)?) {
        let (first, registered, token) = state.withLock { state -> (Bool, Bool, UInt64?) in
            defer { state.done = true }
            return (!state.done, state.registered, state.token)
        }
        guard first else { return }
        if registered { release(token) }
        continuation.finish(throwing: error)
    }

    private func release(_ token: UInt64?) {
        if let token { EventLoop.shared.remove(fd: fd, token: token) }
        close(fd)
    }
}

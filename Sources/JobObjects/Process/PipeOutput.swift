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
///
/// Reads and the close happen under one lock: a handler the loop has
/// already picked up may run after the consumer stopped the stream, and it
/// must find the descriptor marked done rather than read a number that may
/// since name another file.
private final class PipeReader: Sendable {
    private let fd: CInt
    private let continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation
    /// `registered` once `start` has added the descriptor to the event loop
    /// (token nil if that failed); `done` once EOF, an error or the consumer
    /// ended the stream. Whichever of `start` and `finish` comes second
    /// removes and closes the descriptor.
    private let state = Mutex<(registered: Bool, token: UInt64?, done: Bool)>((false, nil, false))

    init(fd: CInt, continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation) {
        self.fd = fd
        self.continuation = continuation
    }

    func start() {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            let errno = Errno(rawValue: Glibc.errno)
            state.withLock { $0.registered = true }
            return finish(JobObjectError.system(errno, operation: "read output", what: "make the pipe non-blocking"))
        }
        do {
            let token = try EventLoop.shared.add(fd: fd, events: UInt32(EPOLLIN.rawValue)) { [self] _ in drain() }
            state.withLock { state in
                state.registered = true
                state.token = token
                if state.done { release(token) }
            }
        } catch {
            state.withLock { $0.registered = true }
            finish(error)
        }
    }

    /// What one read gave.
    private enum Read {
        case bytes([UInt8])
        case end, empty
        case failed(Errno)
        case stopped
    }

    /// Reads one chunk. The loop is level-triggered, so it calls again
    /// while bytes remain; one read per call keeps a writer that never
    /// pauses from holding the loop's thread, which other handles share.
    private func drain() {
        let result = state.withLock { state -> Read in
            guard !state.done else { return .stopped }
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 { return .bytes(Array(buffer[0..<n])) }
                if n == 0 { return .end }
                if Glibc.errno == EINTR { continue }
                return Glibc.errno == EAGAIN ? .empty : .failed(Errno(rawValue: Glibc.errno))
            }
        }
        switch result {
        case .bytes(let bytes): continuation.yield(bytes)
        case .end: finish(nil)
        case .failed(let errno): finish(JobObjectError.system(errno, operation: "read output", what: "read the pipe"))
        case .empty, .stopped: break
        }
    }

    func stop() { finish(nil) }

    private func finish(_ error: (any Error)?) {
        let first = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            if state.registered { release(state.token) }
            return true
        }
        if first { continuation.finish(throwing: error) }
    }

    /// Stops watching and closes; called with the lock held.
    private func release(_ token: UInt64?) {
        if let token { EventLoop.shared.remove(fd: fd, token: token) }
        close(fd)
    }
}

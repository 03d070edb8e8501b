import CJobShim
import Glibc

/// Delivers chosen signals to this process, for supervisors that forward
/// them: as an `AsyncStream` of signal numbers, or to a handler.
///
/// The handler installed for each signal only writes its number to a pipe
/// that the event loop reads, so no Swift code runs in signal context.
/// Installing replaces any previous handler of those signals: each signal
/// goes to the notifier made last of those that name it, and notifiers of
/// different signals are independent (a refused one changes nothing).
///
/// A synchronous signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT,
/// SIGSYS) is reported only when another process sent it: a fault of this
/// process's own, or its own abort, goes to the action the notifier
/// replaced (the Swift runtime's crash report, or a core dump), as if no
/// notifier were there.
///
/// A SIGPIPE or SIGXFSZ the process caused itself is not reported: the
/// kernel raises them for a write of its own to a closed pipe or past its
/// file-size limit (and so does `kill(getpid(), …)`), and the write fails
/// with EPIPE or EFBIG instead. So a supervisor can forward SIGPIPE sent by
/// others without forwarding the ones its own writes raise. A signal
/// blocked on every thread never arrives; the notifier leaves the signal
/// mask alone. With `keepingIgnored`, a signal ignored when the notifier is
/// made stays ignored and is never reported, as a shell leaves alone the
/// signals it was started with ignored (`nohup`).
///
/// ```swift
/// let notifier = try SignalNotifier([SIGTERM, SIGINT])
/// Task { for await signal in notifier.signals { try? child.signal(signal) } }
/// // or, with no stream and no task:
/// let forwarder = try SignalNotifier([SIGTERM, SIGINT]) { try? child.signal($0) }
/// ```
public final class SignalNotifier: Sendable {
    /// Each signal, in the order they arrived, from the notifier's start.
    /// Buffered; one consumer. Empty and finished for a notifier made with a
    /// handler.
    public var signals: AsyncStream<Int32> { stream?.signals ?? AsyncStream { $0.finish() } }
    private let stream: SignalStream?

    /// Notifies of `numbers` through `signals`.
    public convenience init(_ numbers: [Int32], keepingIgnored: Bool = false) throws(JobObjectError) {
        let stream = SignalStream()
        try self.init(numbers, keepingIgnored: keepingIgnored, stream: stream) { stream.continuation.yield($0) }
    }

    /// Calls `handler` with each of `numbers` as it arrives, in order, on the
    /// thread that runs the library's event loop: its monitor thread, or the
    /// thread of a `CallingThreadExecutor` that drives it. It must not block.
    /// The cheaper choice for a supervisor: no stream and no task to start.
    public convenience init(
        _ numbers: [Int32], keepingIgnored: Bool = false,
        handler: @escaping @Sendable (Int32) -> Void
    ) throws(JobObjectError) {
        try self.init(numbers, keepingIgnored: keepingIgnored, stream: nil, handler: handler)
    }

    private init(
        _ numbers: [Int32], keepingIgnored: Bool, stream: SignalStream?,
        handler: @escaping @Sendable (Int32) -> Void
    ) throws(JobObjectError) {
        // The pipe stays open for the life of the process: a handler may
        // still write to it after the notifier is gone.
        let (readFD, writeFD) = try Syscall.pipe().orThrow("watch signals", what: "create a pipe")
        self.stream = stream
        _ = fcntl(writeFD, F_SETFL, O_NONBLOCK)
        let token: UInt64
        do {
            token = try EventLoop.shared.add(fd: readFD, events: UInt32(EPOLLIN.rawValue)) { _ in
                var buffer = [UInt8](repeating: 0, count: 64)
                let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, 64) }
                for index in 0..<max(0, n) { handler(Int32(buffer[index])) }
            }
        } catch {
            close(readFD)
            close(writeFD)
            throw error
        }
        let status = numbers.withUnsafeBufferPointer {
            jobshim_notify_signals(writeFD, $0.baseAddress, CInt($0.count), keepingIgnored ? 1 : 0)
        }
        if status != 0 {
            EventLoop.shared.remove(fd: readFD, token: token)
            close(readFD)
            close(writeFD)
            throw JobObjectError(
                .invalidArgument,
                "cannot handle signals \(numbers.map(signalName)): give numbers 1...64 other than SIGKILL and SIGSTOP, which cannot be caught",
                operation: "watch signals")
        }
    }
}

/// The stream of a notifier made without a handler. A class, so that a
/// notifier made with one holds only a nil reference (no stream type is
/// instantiated by a program that passes a handler).
private final class SignalStream: Sendable {
    let signals: AsyncStream<Int32>
    let continuation: AsyncStream<Int32>.Continuation

    init() {
        (signals, continuation) = AsyncStream.makeStream(of: Int32.self)
    }
}

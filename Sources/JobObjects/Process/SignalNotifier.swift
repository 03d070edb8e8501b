import CJobShim
import Glibc

/// Delivers chosen signals to this process as an `AsyncStream` of signal
/// numbers, for supervisors that forward them.
///
/// The handler installed for each signal only writes its number to a pipe
/// that the monitor thread reads, so no Swift code runs in signal context.
/// Installing replaces any previous handler of those signals.
public final class SignalNotifier: Sendable {
    public let signals: AsyncStream<Int32>
    private let readFD: CInt
    private let writeFD: CInt

    public init(_ numbers: [Int32]) throws(JobObjectError) {
        let (readFD, writeFD) = try Syscall.pipe().orThrow("watch signals", what: "create a pipe")
        self.readFD = readFD
        self.writeFD = writeFD
        _ = fcntl(writeFD, F_SETFL, O_NONBLOCK)
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        signals = stream
        _ = try EventLoop.shared.add(fd: readFD, events: UInt32(EPOLLIN.rawValue)) { _ in
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, 64) }
            for index in 0..<max(0, n) { continuation.yield(Int32(buffer[index])) }
        }
        let status = numbers.withUnsafeBufferPointer { jobshim_notify_signals(writeFD, $0.baseAddress, CInt($0.count)) }
        if status != 0 {
            throw JobObjectError(.invalidArgument, "cannot handle signals \(numbers.map(signalName))", operation: "watch signals")
        }
    }
}
